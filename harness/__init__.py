"""quantbench: benchmark and accuracy-regression harness for LiteRT model optimization."""

__version__ = "0.1.0"
