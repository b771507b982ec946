"""Views of a run's records: terminal table, summary.md."""
