"""Suite files: YAML parsing with line numbers, validation, expansion into cells."""

from harness.suite.loader import load_suite
from harness.suite.schema import Suite

__all__ = ["Suite", "load_suite"]
