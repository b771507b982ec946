"""The architectures of the published quantization table, from keras.applications."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from pydantic import Field

from harness.errors import HarnessError
from harness.models._base import BUILDERS, BuilderOptions, ModelBuilder


class _AppOptions(BuilderOptions):
    weights: str = Field("none", description="none | imagenet | path to a weights file")
    input_size: int = Field(224, ge=32)
    num_classes: int = Field(1000, ge=2)


class _Application(ModelBuilder):
    Options = _AppOptions
    constructor: str

    def build(self, keras: ModuleType, options: _AppOptions):
        if options.weights == "imagenet" and options.num_classes != 1000:
            raise HarnessError("weights: imagenet needs num_classes: 1000")
        constructor = getattr(keras.applications, self.constructor)
        shape = (options.input_size, options.input_size, 3)
        try:
            model = constructor(
                input_shape=shape,
                weights="imagenet" if options.weights == "imagenet" else None,
                classes=options.num_classes,
            )
        except Exception as exc:  # keras downloads imagenet weights; offline that fails
            if options.weights == "imagenet":
                raise HarnessError(
                    f"could not get imagenet weights for {self.constructor} (offline?): {exc}; "
                    "use `weights: none` or a local weights file"
                ) from exc
            raise
        if options.weights not in ("none", "imagenet"):
            path = Path(options.weights)
            if not path.exists():
                raise HarnessError(f"weights file {path} not found")
            model.load_weights(path)
        return model


def _register(name: str, constructor: str, summary: str) -> None:
    BUILDERS.register(name, summary)(type(name, (_Application,), {"constructor": constructor}))


_register("mobilenet_v1", "MobileNet", "keras.applications MobileNet v1 (alpha 1.0)")
_register("mobilenet_v2", "MobileNetV2", "keras.applications MobileNet v2 (alpha 1.0)")
_register("inception_v3", "InceptionV3", "keras.applications Inception v3")
_register("resnet101_v2", "ResNet101V2", "keras.applications ResNet v2 101")
