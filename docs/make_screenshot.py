"""Re-take docs/report.png: a synthetic cnn-like run (4 models × 10 schemes, four nights of history,
one failed cell, three threshold violations, a latency step in a trend) rendered and shot in headless Chromium.

    /work/main/.venv/bin/python docs/make_screenshot.py   (from the repository root)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.report.publish import publish_run  # noqa: E402
from tests.report.big import big_suite  # noqa: E402
from tests.report.runs import THRESHOLDS, with_verdicts, write_run  # noqa: E402

NAMES = {"<b>model_00</b>": "mobilenet_v2", "model_01": "digits_cnn", "model_02": "resnet18", "model_03": "kws_dscnn"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--window-size=1400,1300", "--virtual-time-budget=20000"]


def night(index: int) -> list[dict]:
    records = big_suite(4, 10, samples=1000)
    for record in records:
        record["model"] = NAMES[record["model"]]
        if index >= 2 and record["model"] == "resnet18" and record["scheme"] == "int16x8":
            record["latency_ms"]["median"] *= 1.4
    next(r for r in records if r["model"] == "kws_dscnn" and r["scheme"] == "int8_only").update(
        status="failed", error="RuntimeError: quantize op not supported by the delegate")
    next(r for r in records if r["model"] == "digits_cnn" and r["scheme"] == "dynamic_range")["metrics"]["top1"] = 0.86
    return with_verdicts(records)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(4):
            run_dir = write_run(Path(tmp) / "reports", night(index), suite="cnn", index=index)
            publish_run(run_dir, Path(tmp) / "history.sqlite", thresholds=THRESHOLDS)
        subprocess.run(["/usr/bin/chromium", *FLAGS, f"--user-data-dir={tmp}/profile",
                        f"--screenshot={ROOT / 'docs' / 'report.png'}", (run_dir / "report.html").as_uri()],
                       check=True, capture_output=True)


if __name__ == "__main__":
    main()
