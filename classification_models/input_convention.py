"""The input convention of a classifier: which pixels the model expects.

Our data sets yield float32 pixels in [0, 255]; ``to_model_pixels`` maps them to the
model's range (``0_255``, ``0_1``, ``minus1_1`` or per-channel ``mean_std``) and
repeats a gray channel for an RGB model, in front of the model. For an imported model
the convention comes from the config or is detected from a preprocessing layer
(``resolve_convention``); a train result stores it (``InputConvention.to_dict``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from classification_models.own_model import CONV_TYPES, iter_layers
from common.errors import UserError

SCALES = ("0_255", "0_1", "minus1_1")
PREPROCESSING_TYPES = ("Rescaling", "Normalization")


@dataclasses.dataclass(frozen=True)
class InputConvention:
    """How our pixels (float32 in [0, 255]) become the model's input.

    Attributes:
        scale: ``"0_255"`` (unchanged; the model normalises itself), ``"0_1"`` (÷255),
            ``"minus1_1"`` (÷127.5 − 1) or ``"mean_std"`` (``(x − mean)/std``).
        mean, std: per-channel statistics in pixel units ([0, 255]) for ``mean_std``.
        data_channels: channels of the data set images.
        model_channels: channels the model takes (3 with 1-channel data: the gray
            channel is repeated).
        source: where the scale comes from (``config``, ``detected: layer 'x'``, ``default``).
    """

    scale: str = "0_255"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    data_channels: int = 3
    model_channels: int = 3
    source: str = "default"

    @property
    def repeats_channels(self) -> bool:
        return self.data_channels != self.model_channels

    def to_dict(self) -> dict:
        """The ``input`` entry of a train result."""
        scale: Any = self.scale if self.scale != "mean_std" else {"mean": list(self.mean), "std": list(self.std)}
        out = {"scale": scale, "source": self.source, "data_channels": self.data_channels,
               "model_channels": self.model_channels}
        if self.repeats_channels:
            out["channels"] = f"gray channel repeated {self.model_channels}×"
        return out


def parse_scale(value, *, source: str) -> tuple[str, tuple | None, tuple | None]:
    """``"0_255" | "0_1" | "minus1_1" | {"mean": [...], "std": [...]}`` -> ``(scale, mean, std)``.

    Raises:
        UserError naming ``source`` and the value.
    """
    if isinstance(value, str):
        if value not in SCALES:
            raise UserError(f"{source} must be one of {list(SCALES)} or {{\"mean\": [...], \"std\": [...]}}, "
                            f"got {value!r}")
        return value, None, None
    if isinstance(value, dict) and set(value) == {"mean", "std"}:
        mean, std = value["mean"], value["std"]
        ok = (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) and len(mean) >= 1
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean + std)
              and all(v > 0 for v in std))
        if not ok:
            raise UserError(f"{source}: mean and std must be equally long lists of numbers (std > 0), got {value!r}")
        return "mean_std", tuple(float(v) for v in mean), tuple(float(v) for v in std)
    raise UserError(f"{source} must be one of {list(SCALES)} or {{\"mean\": [...], \"std\": [...]}}, "
                    f"got {value!r}")


def convention_from_dict(data: dict | None, *, data_channels: int, model_channels: int,
                         source: str = "train result input") -> InputConvention:
    """The ``input`` entry of a train result (None: our own models, pixels in [0, 255])."""
    if data is None:
        return InputConvention(data_channels=data_channels, model_channels=model_channels)
    scale, mean, std = parse_scale(data.get("scale", "0_255"), source=f"{source}.scale")
    return InputConvention(scale=scale, mean=mean, std=std, data_channels=data_channels,
                           model_channels=model_channels, source=str(data.get("source", "config")))


def to_model_pixels(images, *, convention: InputConvention):
    """Our pixels ``[N, H, W, C_data]`` in [0, 255] -> the model's input ``[N, H, W, C_model]``.

    Differentiable (input gradients of RRR flow back to the [0, 255] pixels).
    """
    x = tf.cast(images, tf.float32)
    if convention.repeats_channels:
        x = tf.repeat(x, convention.model_channels, axis=-1)
    if convention.scale == "0_1":
        x = x / 255.0
    elif convention.scale == "minus1_1":
        x = x / 127.5 - 1.0
    elif convention.scale == "mean_std":
        x = (x - tf.constant(convention.mean, tf.float32)) / tf.constant(convention.std, tf.float32)
    return x


def detect_scale(model) -> str | None:
    """Name of the first ``Rescaling``/``Normalization`` layer that comes before any
    convolution (the model then takes pixels in [0, 255]), else None."""
    for layer in iter_layers(model):
        kind = type(layer).__name__
        if kind in PREPROCESSING_TYPES:
            return layer.name
        if kind in CONV_TYPES:
            return None
    return None


def resolve_convention(model, *, scale=None, data_channels: int, source: str) -> InputConvention:
    """The input convention of an imported model: ``scale`` from the config, else detected.

    One rule: a model with its own ``Rescaling``/``Normalization`` layer before the first
    convolution takes pixels in [0, 255]; a config scale other than ``0_255`` on top of it
    is refused (it would scale the pixels twice).

    Raises:
        UserError when the config gives no scale and the model has no preprocessing layer,
        the config gives a scale the model's own layer already applies, or the channel
        counts cannot be matched.
    """
    model_channels = int(model.inputs[0].shape[-1])
    if data_channels != model_channels and not (data_channels == 1 and model_channels == 3):
        raise UserError(f"{source}: the model takes {model_channels}-channel images but the data set has "
                        f"{data_channels} channel(s)")
    found = detect_scale(model)
    if scale is not None:
        name, mean, std = parse_scale(scale, source=f"{source}: input.scale")
        if found is not None and name != "0_255":
            # one rule: the model's own layer wins; a second scaling would squash every input
            raise UserError(f"{source}: input.scale is {scale!r} but the model scales its input itself (layer "
                            f"'{found}' before its first convolution), so pixels would be scaled twice; drop "
                            "input.scale (or set it to \"0_255\"), or remove that layer from the model")
        if mean is not None and len(mean) not in (1, model_channels):
            raise UserError(f"{source}: input.scale has {len(mean)} mean value(s) but the model takes "
                            f"{model_channels} channel(s)")
        return InputConvention(scale=name, mean=mean, std=std, data_channels=data_channels,
                               model_channels=model_channels, source="config")
    if found is None:
        raise UserError(f"{source}: the model has no Rescaling/Normalization layer before its first convolution; "
                        f"say which pixel range it expects with input.scale "
                        f"({' | '.join(SCALES)} | {{\"mean\": [...], \"std\": [...]}})")
    return InputConvention(scale="0_255", data_channels=data_channels, model_channels=model_channels,
                           source=f"detected: layer '{found}'")
