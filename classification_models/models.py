"""One builder for GAP-ended VGG-style CNNs and its presets (thesis §3.2.2, §6.2).

Architecture: ``preprocess`` (per-channel normalisation, statistics from the train
split) -> blocks of 3×3 same-padded convolutions (optional batch norm and a
residual 1×1 projection per block) with max-pooling between blocks -> ``last_conv``
(K filters, ReLU) -> ``gap`` (global average pooling) -> ``logits`` (Dense, linear)
-> ``probs`` (softmax). The names make the models easy to read; the classifier finds
the feature map and head of any model by its structure (``own_model.find_parts``).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
from keras import layers

from common.config import from_dict, to_dict
from common.errors import UserError
from common.registry import Registry

LAST_CONV = "last_conv"
GAP = "gap"
LOGITS = "logits"
PROBS = "probs"
PREPROCESS = "preprocess"


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """Parameters of the one builder.

    Attributes:
        filters: filters per block; one entry per block (max-pooling after each
            block except the last, so the last conv grid is input / 2**(blocks-1)).
        convs_per_block: 3×3 convolutions per block.
        last_conv_filters: K, the filters of the last conv layer (CAM features).
        batch_norm: batch normalisation after each convolution.
        residual: residual connection (1×1 projection) around each block.
        dropout: dropout rate before the classification layer (0 = none).
        weight_decay: L2 on conv/dense kernels.
    """

    #: filters per block, one entry per block (2×2 max-pooling between blocks)
    filters: tuple[int, ...] = dataclasses.field(default=(32, 64, 128), metadata={"min_len": 1})
    #: 3×3 convolutions per block
    convs_per_block: int = dataclasses.field(default=2, metadata={"min": 1, "max": 8})
    #: K, the filters of the last conv layer (the CAM features)
    last_conv_filters: int = dataclasses.field(default=64, metadata={"min": 1})
    #: batch normalisation after each convolution
    batch_norm: bool = False
    #: a residual connection (1×1 projection) around each block
    residual: bool = False
    #: dropout rate before the classification layer (0: none)
    dropout: float = dataclasses.field(default=0.0, metadata={"min": 0.0, "max": 0.95})
    #: L2 penalty on conv and dense kernels
    weight_decay: float = dataclasses.field(default=0.0, metadata={"min": 0.0})

    def validate(self, source: str) -> None:
        """Called by ``common.config.from_dict``: every block needs at least one filter."""
        bad = [f for f in self.filters if f < 1]
        if bad:
            raise UserError(f"{source}: filters must all be >= 1, got {list(self.filters)}")


_PRESETS: dict[str, ModelParams] = {
    # 224×224×3 -> 14×14×64 (5 blocks, 4 poolings), BN + residual (§3.2.2).
    "vgg_gap_224": ModelParams(filters=(32, 64, 128, 128, 256), convs_per_block=2, batch_norm=True, residual=True),
    # 128×128×1 sketches -> 8×8×64 (5 blocks).
    "vgg_gap_sketch": ModelParams(filters=(16, 32, 64, 128, 128), convs_per_block=2, batch_norm=True, residual=True),
    # 72×72×1 symbols -> 18×18×64, decoy digits 48/64 px -> 12×12 / 16×16 (3 blocks, no
    # BN/residual, §6.2); small and fast.
    "vgg_gap_small": ModelParams(filters=(16, 32, 64), convs_per_block=2),
}


#: the model presets by name (``common.registry``; a train config's ``model.name``)
PRESETS = Registry("model")
for _name, _params in _PRESETS.items():
    PRESETS.register(_params, name=_name)


def resolve_params(name: str, overrides: dict | None = None, source: str = "model params") -> ModelParams:
    """The preset ``name`` with ``overrides`` applied, strictly validated.

    Unknown keys, wrong types and out-of-range values raise a UserError naming
    ``source`` (e.g. ``"cfg.json: model.params"``), the key and the value.
    """
    preset = PRESETS.get(name)
    merged = {**to_dict(preset), **dict(overrides or {})}
    return from_dict(ModelParams, merged, source=source)


def last_conv_grid(params: ModelParams, input_shape: Sequence[int]) -> tuple[int, int]:
    """``(h, w)`` of the last conv layer for ``input_shape`` (one 2×2 pooling between blocks)."""
    h, w = int(input_shape[0]), int(input_shape[1])
    for _ in range(len(params.filters) - 1):
        h, w = h // 2, w // 2
    return h, w


def check_input_shape(params: ModelParams, input_shape: Sequence[int], model_name: str = "model") -> None:
    """A UserError when ``input_shape`` is too small for the blocks (last-conv grid < 1×1)."""
    h, w = last_conv_grid(params, input_shape)
    if h < 1 or w < 1:
        shape = "×".join(str(int(v)) for v in input_shape)
        raise UserError(
            f"{model_name}: {len(params.filters)} blocks pool {shape} images down to nothing; "
            f"use fewer blocks (model.params.filters) or larger images"
        )


def build_model(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    params: ModelParams,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int | None = None,
):
    """Builds the GAP classifier.

    Args:
        input_shape: ``(H, W, C)`` of the images, pixel values in [0, 255].
        num_classes: number of classes C.
        params: architecture (see ``ModelParams``).
        mean, std: per-channel statistics of the train split in pixel units.
        seed: seeds the initialisers (deterministic weights).

    Returns:
        A ``keras.Model`` mapping images ``[N,H,W,C]`` to probabilities ``[N,C]``
        with layers ``preprocess``, ``last_conv``, ``gap``, ``logits``, ``probs``.
    """
    h, w, c = (int(v) for v in input_shape)
    mean = list(mean) if mean is not None else [127.5] * c
    std = list(std) if std is not None else [64.0] * c
    if len(mean) != c or len(std) != c:
        raise UserError(f"normalisation statistics have {len(mean)} channel(s) but the images have {c}")
    reg = keras.regularizers.L2(params.weight_decay) if params.weight_decay > 0 else None
    counter = [0]

    def init():
        counter[0] += 1
        return keras.initializers.HeNormal(seed=None if seed is None else seed + counter[0])

    inputs = keras.Input(shape=(h, w, c), name="image")
    x = layers.Normalization(mean=mean, variance=[s * s for s in std], name=PREPROCESS)(inputs)
    n_blocks = len(params.filters)
    for b, f in enumerate(params.filters):
        shortcut = x
        for j in range(params.convs_per_block):
            x = layers.Conv2D(f, 3, padding="same", use_bias=not params.batch_norm, kernel_initializer=init(),
                              kernel_regularizer=reg, name=f"block{b + 1}_conv{j + 1}")(x)
            if params.batch_norm:
                x = layers.BatchNormalization(name=f"block{b + 1}_bn{j + 1}")(x)
            if j < params.convs_per_block - 1 or not params.residual:
                x = layers.Activation("relu", name=f"block{b + 1}_relu{j + 1}")(x)
        if params.residual:
            shortcut = layers.Conv2D(f, 1, padding="same", kernel_initializer=init(), kernel_regularizer=reg,
                                     name=f"block{b + 1}_proj")(shortcut)
            x = layers.Add(name=f"block{b + 1}_add")([x, shortcut])
            x = layers.Activation("relu", name=f"block{b + 1}_out")(x)
        if b < n_blocks - 1:
            x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
    x = layers.Conv2D(params.last_conv_filters, 3, padding="same", activation="relu", kernel_initializer=init(),
                      kernel_regularizer=reg, name=LAST_CONV)(x)
    x = layers.GlobalAveragePooling2D(name=GAP)(x)
    if params.dropout > 0:
        x = layers.Dropout(params.dropout, seed=seed, name="head_dropout")(x)
    logits = layers.Dense(num_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                          kernel_regularizer=reg, name=LOGITS)(x)
    probs = layers.Activation("softmax", name=PROBS)(logits)
    return keras.Model(inputs, probs, name="vgg_gap")
