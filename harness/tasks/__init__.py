"""Tasks: how model outputs become metrics (one module per task, each registers itself)."""

from harness.tasks._base import (
    CELL_METRICS,
    TASKS,
    Metric,
    Task,
    TaskOptions,
    agreement_metrics,
    all_metrics,
    headline_metrics,
    threshold_metrics,
)

__all__ = ["CELL_METRICS", "TASKS", "Metric", "Task", "TaskOptions", "agreement_metrics", "all_metrics",
           "headline_metrics", "threshold_metrics"]
