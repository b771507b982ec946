"""A training technique followed by any post-training scheme: `prune+int8`, `cluster+float16`, ...

One registered name per pair, for every technique that declares `pairs_with_post_training` (its
fine-tuned model is a float model: prune, cluster) and every registered post-training scheme (a
scheme module added later gets its pairs too). The options are the union of both: `{scheme:
prune+int8, sparsity: 0.8}`, `{scheme: cluster+int8_only, clusters: 16, io: uint8}`. The
fine-tuned model is shared with `prune` / `cluster` (same options and budget → same cached model);
the post-training scheme then converts it as it converts any float model. The package imports this
module after every technique module.
"""

from __future__ import annotations

import importlib
import pkgutil

import harness.schemes as schemes_package
from harness.schemes._base import BASELINE, SCHEMES
from harness.schemes.training._tfmot import TECHNIQUES, Technique, training_scheme


def post_training_schemes() -> list[str]:
    """Registered schemes that convert a float SavedModel (every one but the training-time ones).

    This runs while the registry imports its modules, so it reads `SCHEMES.registered()`:
    `names()`/`get()` would wait for that very import to finish."""
    for info in pkgutil.iter_modules(schemes_package.__path__):
        if not info.name.startswith("_") and info.name != "training":
            importlib.import_module(f"{schemes_package.__name__}.{info.name}")
    return sorted(name for name, scheme in SCHEMES.registered().items()
                  if name != BASELINE and not scheme.needs_training)


def _register(chain: list[Technique], post: str) -> None:
    name = f"{'+'.join(t.name for t in chain)}+{post}"
    if name in SCHEMES.registered():
        return
    scheme = SCHEMES.registered()[post]
    SCHEMES.register(name, f"{' + '.join(t.name for t in chain)} (fine-tuned), then {post}")(
        training_scheme(name, chain, post=post, post_options=scheme.Options,
                        needs_calibration=scheme.needs_calibration, claims=scheme.claims))


for _technique in [t for t in TECHNIQUES.values() if t.pairs_with_post_training]:
    for _post in post_training_schemes():
        _register([_technique], _post)
