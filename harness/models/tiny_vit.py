"""A tiny vision transformer: patch embedding, pre-norm attention blocks (softmax, layer norm, GELU).

Built from Keras layers only (no custom layer: the cached `.keras` reloads anywhere). Position comes
from a learned token-mixing Dense over the patch axis after the embedding (as in MLP-Mixer) instead of
an added position table, which Keras has no built-in layer for.
"""

from __future__ import annotations

from types import ModuleType

from pydantic import Field, PositiveInt, model_validator

from harness.models._base import BUILDERS, BuilderOptions, ModelBuilder


class TinyVitOptions(BuilderOptions):
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] = (28, 28, 1)
    num_classes: int = Field(10, ge=2)
    patch: int = Field(4, ge=1, description="patch side (pixels); the image sides must be multiples of it")
    dim: int = Field(64, ge=8, description="token width")
    depth: int = Field(4, ge=1, description="transformer blocks")
    heads: int = Field(4, ge=1)
    mlp_ratio: int = Field(2, ge=1, description="MLP hidden width = mlp_ratio × dim")

    @model_validator(mode="after")
    def _fits(self) -> TinyVitOptions:
        if self.input_shape[0] % self.patch or self.input_shape[1] % self.patch:
            raise ValueError(f"input {self.input_shape[:2]} is not a whole number of {self.patch}-pixel patches")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        return self


def _block(layers: ModuleType, x, options: TinyVitOptions):
    """Pre-norm transformer block: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""
    h = layers.LayerNormalization(epsilon=1e-6)(x)
    h = layers.MultiHeadAttention(options.heads, options.dim // options.heads)(h, h)
    x = layers.Add()([x, h])
    h = layers.LayerNormalization(epsilon=1e-6)(x)
    h = layers.Dense(options.mlp_ratio * options.dim, activation="gelu")(h)
    h = layers.Dense(options.dim)(h)
    return layers.Add()([x, h])


@BUILDERS.register("tiny_vit", "tiny vision transformer: patch embedding, attention blocks (softmax, layer norm, GELU)")
class TinyVit(ModelBuilder):
    Options = TinyVitOptions

    def build(self, keras: ModuleType, options: TinyVitOptions):
        layers = keras.layers
        tokens = (options.input_shape[0] // options.patch) * (options.input_shape[1] // options.patch)
        inputs = keras.Input(options.input_shape)
        x = layers.Conv2D(options.dim, options.patch, strides=options.patch)(inputs)
        x = layers.Reshape((tokens, options.dim))(x)
        x = layers.Permute((2, 1))(layers.Dense(tokens)(layers.Permute((2, 1))(x)))  # token mixing: position
        for _ in range(options.depth):
            x = _block(layers, x, options)
        x = layers.GlobalAveragePooling1D()(layers.LayerNormalization(epsilon=1e-6)(x))
        outputs = layers.Softmax()(layers.Dense(options.num_classes)(x))
        return keras.Model(inputs, outputs, name="tiny_vit")
