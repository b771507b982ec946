"""Small models trained from scratch: the TensorFlow quantization tutorial CNN, a mobile CNN and an MLP."""

from __future__ import annotations

from types import ModuleType

from pydantic import Field, PositiveInt

from harness.models._base import BUILDERS, BuilderOptions, ModelBuilder


class _SmallOptions(BuilderOptions):
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] = (28, 28, 1)
    num_classes: int = Field(10, ge=2)


class _TutorialOptions(_SmallOptions):
    filters: int = Field(12, ge=1)


@BUILDERS.register("tutorial_cnn", "TF quantization tutorial CNN: Conv2D(filters,3x3)-MaxPool-Dense, softmax")
class TutorialCnn(ModelBuilder):
    Options = _TutorialOptions

    def build(self, keras: ModuleType, options: _TutorialOptions):
        layers = keras.layers
        return keras.Sequential(
            [
                keras.Input(options.input_shape),
                layers.Conv2D(options.filters, 3, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(options.num_classes),
                layers.Softmax(),
            ],
            name="tutorial_cnn",
        )


class _MobileOptions(_SmallOptions):
    width: int = Field(32, ge=4, description="channels of the stem; blocks use 2x and 4x")


@BUILDERS.register("mobile_cnn", "depthwise-separable CNN: strided stem, 3 separable blocks, global pooling")
class MobileCnn(ModelBuilder):
    Options = _MobileOptions

    def build(self, keras: ModuleType, options: _MobileOptions):
        layers = keras.layers
        width = options.width

        def separable(channels: int) -> list:
            return [layers.SeparableConv2D(channels, 3, padding="same", use_bias=False),
                    layers.BatchNormalization(), layers.ReLU()]

        return keras.Sequential(
            [
                keras.Input(options.input_shape),
                layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
                *separable(2 * width),
                *separable(2 * width),
                layers.MaxPooling2D(2),
                *separable(4 * width),
                layers.GlobalAveragePooling2D(),
                layers.Dense(options.num_classes),
                layers.Softmax(),
            ],
            name="mobile_cnn",
        )


class _MlpOptions(_SmallOptions):
    units: list[PositiveInt] = Field(default_factory=lambda: [512, 256], min_length=1,
                                     description="widths of the hidden Dense layers")


@BUILDERS.register("mlp", "dense model: Flatten, hidden Dense+ReLU layers (`units`), Dense, softmax")
class Mlp(ModelBuilder):
    Options = _MlpOptions

    def build(self, keras: ModuleType, options: _MlpOptions):
        layers = keras.layers
        hidden = [layers.Dense(units, activation="relu") for units in options.units]
        return keras.Sequential(
            [keras.Input(options.input_shape), layers.Flatten(), *hidden, layers.Dense(options.num_classes),
             layers.Softmax()],
            name="mlp",
        )
