"""Dataset loaders (one module per kind, each registers itself in DATASETS)."""

from harness.datasets._base import DATASETS, Dataset, DatasetLoader, LoaderOptions, fingerprint_arrays

__all__ = ["DATASETS", "Dataset", "DatasetLoader", "LoaderOptions", "fingerprint_arrays"]
