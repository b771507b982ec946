"""Dataset loaders (one module per kind, each registers itself in DATASETS)."""

from harness.datasets._base import (
    DATASETS,
    Dataset,
    FromSignature,
    LoaderOptions,
    Samples,
    fingerprint_arrays,
    sample_count,
    samples_digest,
    take,
)

__all__ = ["DATASETS", "Dataset", "FromSignature", "LoaderOptions", "Samples", "fingerprint_arrays", "sample_count",
           "samples_digest",
           "take"]
