"""Run a suite: every model × device × scheme cell, recorded as it finishes.

One concept per module: `lifecycle` (SuiteRunner: run.json from start to stop, the CellPipeline of
harness/pipeline.py), `resume` (which recorded cells a resume keeps), `host` (source, conversion,
evaluation), `measure` (latency on the device, device numerics, A/B and float pairs), `records`
(appending results.jsonl), `checks` (threshold verdicts), `devices`, `inputs` (datasets) and
`failures` (what a failed cell says). Who runs the cells is an executor (harness/executors/)."""

from harness._latency import latency_stats
from harness.history import EarlierRun
from harness.plan import Cell, plan_cells
from harness.runner.lifecycle import RunOutcome, SuiteRunner

__all__ = ["Cell", "EarlierRun", "RunOutcome", "SuiteRunner", "latency_stats", "plan_cells"]
