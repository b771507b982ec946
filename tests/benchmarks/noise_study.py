"""Noise study of the latency verdict on this machine: false alarms and detection, the method of
the first regression tracker (two-sided Mann–Whitney U on the per-iteration samples of two runs)
beside the current one (the earlier model re-timed beside the new one in one run, paired A/B).

    .venv/bin/python -m tests.benchmarks.noise_study [--nights 20] [--slow-nights 5]

Night after night it measures a model as `bench run` does (`repeats` fresh processes on the
pinned core), then a candidate: the same model (false alarms) or a genuinely 5 % / 10 % slower
one (21 or 22 identical dense layers instead of 20, so the work grows linearly; a wider layer
does not: XNNPACK's tiles make 1,050 units faster than 1,000; the true ratio is measured side by
side, 20 pairs, and printed). Both
methods judge every candidate with the same minimum effect (×1.05); neither gets the "same bytes,
so the machine changed" exemption, as if every night re-converted its models.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness._latency import latency_stats, measure_repeats, time_ab
from harness.devices.local.device import LocalDevice, LocalOptions
from harness.suite.schema import LatencySpec

def write_stack(path: Path, layers: int, width: int = 256) -> None:
    """A float .tflite of `layers` identical Dense(width, ReLU) layers: cost linear in `layers`."""
    import tempfile

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((width,), batch_size=1)]
                             + [keras.layers.Dense(width, activation="relu") for _ in range(layers)])
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(folder).convert())

RATIO = 1.05
SETTINGS = LatencySpec(warmup_runs=20, num_runs=200, min_secs=0.3, repeats=3, ab_pairs=10)


def night(device: LocalDevice, model: Path) -> dict[str, Any]:
    raws, sample = measure_repeats(device, model, SETTINGS)
    return {"stats": latency_stats(raws), "samples": [s for raw in raws for s in raw["samples"]]}


def old_method(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    from scipy.stats import mannwhitneyu

    p = mannwhitneyu(current["samples"], previous["samples"], alternative="two-sided").pvalue
    return bool(p < 0.05 and np.median(current["samples"]) / np.median(previous["samples"]) >= RATIO)


def new_method(device: LocalDevice, earlier: Path, candidate: Path) -> tuple[bool, dict[str, Any]]:
    ab = time_ab(device, earlier, candidate, SETTINGS)
    return ab["ci"] is not None and ab["ci"][0] > RATIO, ab


def study(nights: int, slow_nights: int, folder: Path) -> dict[str, Any]:
    device = LocalDevice("local", LocalOptions())
    models = {name: folder / f"{name}.tflite" for name in ("base", "same", "slower5", "slower10")}
    for name, layers in (("base", 20), ("same", 20), ("slower5", 21), ("slower10", 22)):
        write_stack(models[name], layers)
    truth = {name: time_ab(device, models["base"], models[name], SETTINGS.model_copy(update={"ab_pairs": 20}))["ratio"]
             for name in ("slower5", "slower10")}
    plan = ["same"] * nights + ["slower5"] * slow_nights + ["slower10"] * slow_nights
    previous, rows = night(device, models["base"]), []
    for candidate in plan:
        current = night(device, models[candidate])
        flagged, ab = new_method(device, models["base"], models[candidate])
        cross = float(current["stats"]["median"] / previous["stats"]["median"])
        rows.append({"candidate": candidate, "old": old_method(previous, current), "new": flagged,
                     "cross_run_ratio": cross, "paired_ratio": ab["ratio"], "paired_ci": ab["ci"]})
        print(json.dumps(rows[-1]), flush=True)
        previous = night(device, models["base"])  # the next night's baseline run
    return {"true_ratio": truth, "nights": rows}


def summarize(result: dict[str, Any]) -> str:
    lines = [f"true ratios (20 paired measurements): {result['true_ratio']}", "",
             "| candidate | nights | today's method flags | paired A/B flags | cross-run ratio range | paired ratio range |",
             "|---|---|---|---|---|---|"]
    for name in ("same", "slower5", "slower10"):
        rows = [r for r in result["nights"] if r["candidate"] == name]
        if rows:
            cross, paired = [r["cross_run_ratio"] for r in rows], [r["paired_ratio"] for r in rows]
            lines.append(f"| {name} | {len(rows)} | {sum(r['old'] for r in rows)} | {sum(r['new'] for r in rows)} | "
                         f"{min(cross):.3f}–{max(cross):.3f} | {min(paired):.3f}–{max(paired):.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument("--slow-nights", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports/noise_study.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = study(args.nights, args.slow_nights, Path(folder))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(summarize(result))


if __name__ == "__main__":
    main()
