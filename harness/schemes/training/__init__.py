"""Training-time schemes (TensorFlow Model Optimization Toolkit, in tf_keras).

One module per technique (`prune.py`, `cluster.py`, `qat.py`): it defines a `Technique`, adds it with
`register_technique` and registers its schemes (`qat`, `prune+cluster`, `prune+cluster+qat`, ...);
`combined.py` then registers `<technique>+<post-training scheme>` (`prune+int8`, `cluster+float16`,
...) for every technique that declares `pairs_with_post_training`. Each is a registered scheme with
`needs_training = True` and `from_keras(source_path, options, finetune, calibration, cache)`; a
`.tflite` source is n/a. The scheme registry imports this package, which imports every module of it
not starting with `_` (so a new technique is one file), `combined` last.
"""

import importlib
import pkgutil

from harness.schemes.training._tfmot import TECHNIQUES, FineTuning, Technique, TrainingScheme

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "combined":
        importlib.import_module(f"{__name__}.{_info.name}")
importlib.import_module(f"{__name__}.combined")  # last: it pairs the techniques registered above

__all__ = ["TECHNIQUES", "FineTuning", "Technique", "TrainingScheme"]
