"""Training-time schemes (TensorFlow Model Optimization Toolkit, in tf_keras).

`qat`, `prune`, `cluster`, their collaborative combinations (`prune+qat`, `cluster+qat`,
`prune+cluster`, `prune+cluster+qat`) and pruning/clustering followed by any post-training
scheme (`prune+int8`, `cluster+float16`, ...). Each is a registered scheme with
`needs_training = True` and `from_keras(source_path, options, finetune, calibration, cache)`;
a `.tflite` source is n/a. The scheme registry imports this package; importing the
submodules here registers them.
"""

from harness.schemes.training import cluster, combined, prune, qat  # noqa: F401 - registration
from harness.schemes.training._tfmot import FineTuning, TrainingScheme

__all__ = ["FineTuning", "TrainingScheme"]
