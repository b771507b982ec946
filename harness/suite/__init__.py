"""The loader: a suite file → validated, expanded cells (the file's shape itself is harness.config)."""

from harness.suite.loader import load_suite

__all__ = ["load_suite"]
