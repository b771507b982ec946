"""Noise study of the latency verdict on this machine: false alarms and detection of three
methods side by side — the first regression tracker's (two-sided Mann–Whitney U on the
per-iteration samples of two runs), today's cross-run fallback (one-sided Welch t on the log
repeat medians of two runs) and the verdict for a changed model (the earlier model re-timed beside
the new one in one run, paired A/B, pairs added while the interval straddles the bound).

    .venv/bin/python -m tests.benchmarks.noise_study [--nights 20] [--slow-nights 5] [--bound 1.02]

Night after night it measures a model as `bench run` does (`repeats` fresh processes on the
pinned core), then a candidate: the same model (false alarms) or a genuinely ~5 % / ~10 % slower
one (19 or 20 identical Dense(256) layers instead of 18, so the work grows linearly; wider layers
leave the caches and grow faster than linearly; the true ratio is measured side by side, 40
pairs, and printed). The cross-run methods use the suite default ratio (×1.05); the paired one
its own bound. None gets the "same bytes, so the machine changed" exemption, as if every night
re-converted its models.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness._latency import latency_stats, measure_repeats, time_ab
from harness.config.schema import LatencySpec
from harness.devices.local.device import LocalDevice, LocalOptions
from harness.stats import log_t_test


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
SETTINGS = LatencySpec(warmup_runs=20, num_runs=200, min_secs=0.3, repeats=3, ab_pairs=8, ab_max_pairs=24)
LAYERS = {"base": 18, "same": 18, "slower5": 19, "slower10": 20}


def night(device: LocalDevice, model: Path) -> dict[str, Any]:
    raws, sample = measure_repeats(device, model, SETTINGS)
    stats = latency_stats(raws)
    return {"stats": stats, "samples": [s for raw in raws for s in raw["samples"]], "medians": stats["repeat_medians"]}


def old_method(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    from scipy.stats import mannwhitneyu

    p = mannwhitneyu(current["samples"], previous["samples"], alternative="two-sided").pvalue
    return bool(p < 0.05 and np.median(current["samples"]) / np.median(previous["samples"]) >= RATIO)


def repeat_median_method(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    test = log_t_test(previous["medians"], current["medians"], "repeat medians", 3)
    return bool(test is not None and test.p is not None and test.p < 0.05 and test.ratio >= RATIO)


def paired_method(device: LocalDevice, earlier: Path, candidate: Path, bound: float) -> tuple[bool, dict[str, Any]]:
    ab = time_ab(device, earlier, candidate, SETTINGS, bound=bound)
    return ab["ci"] is not None and ab["ci"][0] > bound, ab


def study(nights: int, slow_nights: int, folder: Path, bound: float) -> dict[str, Any]:
    device = LocalDevice("local", LocalOptions())
    models = {name: folder / f"{name}.tflite" for name in LAYERS}
    for name, layers in LAYERS.items():
        write_stack(models[name], layers)
    many = SETTINGS.model_copy(update={"ab_pairs": 40, "ab_max_pairs": 40})
    truth = {name: time_ab(device, models["base"], models[name], many)["ci"] for name in ("slower5", "slower10")}
    print(json.dumps({"true_ratio_ci": truth}), flush=True)
    plan = ["same"] * nights + ["slower5"] * slow_nights + ["slower10"] * slow_nights
    previous, rows = night(device, models["base"]), []
    for candidate in plan:
        current = night(device, models[candidate])
        flagged, ab = paired_method(device, models["base"], models[candidate], bound)
        cross = float(current["stats"]["median"] / previous["stats"]["median"])
        rows.append({"candidate": candidate, "old": old_method(previous, current),
                     "repeat_medians": repeat_median_method(previous, current), "new": flagged,
                     "cross_run_ratio": cross, "paired_ratio": ab["ratio"], "paired_ci": ab["ci"],
                     "pairs": len(ab["pairs"])})
        print(json.dumps(rows[-1]), flush=True)
        previous = night(device, models["base"])  # the next night's baseline run
    return {"true_ratio_ci": truth, "bound": bound, "nights": rows}


def summarize(result: dict[str, Any]) -> str:
    truth = {k: f"[{v[0]:.3f}, {v[1]:.3f}]" for k, v in result["true_ratio_ci"].items()}
    lines = [f"true ratios (95 % interval of 40 pairs): {truth}; paired bound ×{result['bound']:g}", "",
             "| candidate | nights | first tracker (MWU, iterations) | repeat medians (Welch t) | paired A/B "
             "| cross-run ratio range | paired ratio range | pairs used |", "|---|---|---|---|---|---|---|---|"]
    for name in ("same", "slower5", "slower10"):
        rows = [r for r in result["nights"] if r["candidate"] == name]
        if rows:
            cross, paired = [r["cross_run_ratio"] for r in rows], [r["paired_ratio"] for r in rows]
            lines.append(f"| {name} | {len(rows)} | {sum(r['old'] for r in rows)} | "
                         f"{sum(r['repeat_medians'] for r in rows)} | {sum(r['new'] for r in rows)} | "
                         f"{min(cross):.3f}–{max(cross):.3f} | {min(paired):.3f}–{max(paired):.3f} | "
                         f"{min(r['pairs'] for r in rows)}–{max(r['pairs'] for r in rows)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument("--slow-nights", type=int, default=5)
    parser.add_argument("--bound", type=float, default=1.02, help="the paired A/B bound (regression.min_paired_ratio)")
    parser.add_argument("--out", type=Path, default=Path("reports/noise_study.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = study(args.nights, args.slow_nights, Path(folder), args.bound)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(summarize(result))


if __name__ == "__main__":
    main()
