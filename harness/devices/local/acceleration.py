"""How much of a model the local device's XNNPACK path takes, probed in a process of its own
(`python -m harness.devices.local.acceleration MODEL`): LiteRT's CompiledModel logs to the
process's stderr and a crash in it must not take the run down. Prints JSON (harness.record.Acceleration)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 600


def probe(model: Path, threads: int) -> dict[str, Any]:
    """The record's `acceleration` of `model` on this machine; `{"error": why}` when the probe failed."""
    command = [sys.executable, "-m", "harness.devices.local.acceleration", str(model), "--threads", str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"the acceleration probe did not finish within {TIMEOUT_S} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the acceleration probe failed (exit {done.returncode}): {tail}"}
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> None:
    from harness.tflite.runtime import acceleration

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    json.dump(acceleration(Path(args.model), args.threads), sys.stdout)


if __name__ == "__main__":
    main()
