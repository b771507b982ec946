"""Reproducible training: the same seed gives bit-identical weights, run after run (and, pinned as
below, across x86-64 machines with AVX2 — reasoned from what was measured here, not checked on a second machine).

On one machine, TensorFlow's CPU kernels give the same bits run after run once they are seeded,
but not across machines: measured on mobile_cnn, the weights change with the number of threads
an op is split over (intra-op threads: the machine's core count by default) and with the
instruction set oneDNN's kernels are generated for (AVX-512 vs AVX2, ...), also with
`TF_ENABLE_ONEDNN_OPTS=0` (matrix products still run oneDNN's sgemm). So every training path
(builders here, the training-time schemes in harness/schemes/training) seeds through
`seed_everything`, which turns on TensorFlow's op determinism and pins ops to one thread, and
`pin_environment` (run on import of harness.models, before TensorFlow starts) caps oneDNN at
AVX2, which most x86-64 machines of the last decade have. What is pinned is in `settings()`,
part of the trained models' cache keys and of their training summaries.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

# Read by TensorFlow when it starts (threads) and by oneDNN on its first kernel (ISA); a value
# the user exported wins.
PINNED_ENVIRONMENT = {"TF_NUM_INTRAOP_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_environment() -> None:
    """Set the pinned variables the user has not set (effective only before TensorFlow starts)."""
    for name, value in PINNED_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def intra_op_threads() -> str:
    """The threads one TensorFlow op may use: as configured, else from the environment, else all cores."""
    configured = 0
    if "tensorflow" in sys.modules:
        configured = sys.modules["tensorflow"].config.threading.get_intra_op_parallelism_threads()
    return str(configured or os.environ.get("TF_NUM_INTRAOP_THREADS") or "all cores")


def settings() -> dict[str, str]:
    """Besides the seed, what decides the trained weights (for cache keys and training summaries)."""
    return {"op_determinism": "on", "intra_op_threads": intra_op_threads(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "all"),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}


def seed_everything(seed: int, keras: ModuleType) -> dict[str, Any]:
    """Before building or fitting a model with `keras` (Keras 3 or tf_keras): deterministic TF ops on
    one thread, and Python's, NumPy's, TensorFlow's and Keras' generators seeded (which also fixes
    the order `fit(shuffle=True)` draws the batches in). Returns the settings for the summary."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    try:  # as the environment says (what settings() reports), also if TensorFlow was imported before it was set
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("TF_NUM_INTRAOP_THREADS", "1")))
    except (RuntimeError, ValueError):  # TensorFlow has started: TF_NUM_INTRAOP_THREADS decided when it did
        pass
    keras.utils.set_random_seed(seed)
    return {"seed": seed, **settings()}
