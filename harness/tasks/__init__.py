"""Tasks: how model outputs become metrics (one module per task, each registers itself)."""

from harness.tasks._base import CELL_METRICS, TASKS, Metric, TaskOptions, all_metrics, threshold_metrics

__all__ = ["CELL_METRICS", "TASKS", "Metric", "TaskOptions", "all_metrics", "threshold_metrics"]
