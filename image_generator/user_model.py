"""Adapter for a Keras inpainting model (a user's, or the learned inpainter of this package).

Inpainting model signature (the contract; the learned inpainter follows it too)
------------------------------------------------------------------------------
A ``keras.Model`` with **three inputs, in this order** (names are not required):

1. ``image``  float32 ``[N, H, W, C]`` in ``[0, 1]`` (pixels / 255) with the hole
   zeroed, i.e. ``image * (1 - mask)``;
2. ``mask``   float32 ``[N, H, W, 1]``, 1 = hole (to fill), 0 = known;
3. ``noise``  float32 ``[N, H, W, 1]``, standard normal, drawn from the seed
   (a deterministic model may ignore it);

and **one output** float32 ``[N, H, W, C]`` in ``[0, 1]`` (values outside are clipped).
``H, W`` may be fixed or ``None``; ``C`` must match the images (1 or 3). Only the
output's pixels inside the mask are used; everything outside the mask is copied from
the original, exactly. Saved as ``.keras`` and loaded in safe mode (no lambdas,
custom layers registered with ``keras.saving.register_keras_serializable``).

    gen = image_generator.registry.get("user_model", model_path="my_inpainter.keras")
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from classification_models.model_file import load_keras_model
from common.errors import UserError
from image_generator.base import Generator

SIGNATURE = ("image [N,H,W,C] in [0,1] (hole zeroed), mask [N,H,W,1] (1 = hole), noise [N,H,W,1] N(0,1) "
             "-> fill [N,H,W,C] in [0,1]")


def _dims(shape) -> tuple:
    return tuple(None if d is None else int(d) for d in shape)


def validate_signature(model, image_shape: tuple[int, int, int] | None = None, where: str = "inpainting model") -> None:
    """Checks that ``model`` follows the documented signature.

    Args:
        model: a ``keras.Model``.
        image_shape: ``(H, W, C)`` the model will be used on (None: only the static checks).
        where: how to name the model in errors (its file).

    Raises:
        UserError naming the input/output at fault and the expected signature.
    """
    inputs = list(getattr(model, "inputs", None) or [])
    outputs = list(getattr(model, "outputs", None) or [])
    if len(inputs) != 3:
        raise UserError(f"{where}: expected 3 inputs ({SIGNATURE}), the model has {len(inputs)}")
    if len(outputs) != 1:
        raise UserError(f"{where}: expected 1 output ({SIGNATURE}), the model has {len(outputs)}")
    shapes = [_dims(t.shape) for t in inputs]
    out_shape = _dims(outputs[0].shape)
    for name, shp in zip(("image", "mask", "noise"), shapes):
        if len(shp) != 4:
            raise UserError(f"{where}: input '{name}' must be 4-D [N,H,W,·], got shape {shp} ({SIGNATURE})")
    if len(out_shape) != 4:
        raise UserError(f"{where}: output must be 4-D [N,H,W,C], got shape {out_shape} ({SIGNATURE})")
    for name, shp in (("mask", shapes[1]), ("noise", shapes[2])):
        if shp[3] not in (None, 1):
            raise UserError(f"{where}: input '{name}' must have 1 channel, got shape {shp} ({SIGNATURE})")
    if shapes[0][3] is not None and out_shape[3] is not None and shapes[0][3] != out_shape[3]:
        raise UserError(f"{where}: output has {out_shape[3]} channel(s) but input 'image' has {shapes[0][3]} ({SIGNATURE})")
    for name, shp in zip(("image", "mask", "noise", "output"), shapes + [out_shape]):
        for a, b in zip(shp[1:3], shapes[0][1:3]):
            if a is not None and b is not None and a != b:
                raise UserError(f"{where}: {name} size {shp[1:3]} differs from the image input's {shapes[0][1:3]}")
    if image_shape is not None:
        h, w, c = (int(v) for v in image_shape)
        for name, shp, want in (("image", shapes[0], (h, w, c)), ("mask", shapes[1], (h, w, 1)),
                                ("noise", shapes[2], (h, w, 1)), ("output", out_shape, (h, w, c))):
            for got, exp in zip(shp[1:], want):
                if got is not None and got != exp:
                    raise UserError(
                        f"{where}: {name} expects [N,{','.join(str(d) for d in shp[1:])}] but the images need "
                        f"[N,{','.join(map(str, want))}] ({SIGNATURE})"
                    )


def load_inpainting_model(path: str | os.PathLike):
    """Loads a ``.keras`` inpainting model in safe mode (``classification_models.model_file.
    load_keras_model``) and checks its signature."""
    importlib.import_module("image_generator.inpainter_layers")  # registers the learned inpainter's layers

    try:
        model = load_keras_model(path)
    except UserError as exc:
        raise UserError(f"cannot load inpainting model: {exc}") from None
    validate_signature(model, where=f"inpainting model '{path}'")
    return model


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """``model_path``: the ``.keras`` inpainting model; ``batch_size``: images per forward
    pass. (An in-memory ``model`` is a constructor argument only, not a config key.)"""

    #: the `.keras` inpainting model
    model_path: Optional[str] = None
    #: images per forward pass
    batch_size: int = dataclasses.field(default=64, metadata={"min": 1})


class UserModelGenerator(Generator):
    """Fills holes with a Keras model of the documented signature (see module docstring).

    Args:
        model_path: ``.keras`` file (loaded in safe mode), or
        model: an in-memory ``keras.Model`` (tests, programmatic use).
        batch_size: images per forward pass.
    """

    name = "user_model"
    stochastic = True
    Params = ModelParams

    def __init__(self, model_path: str | None = None, model=None, batch_size: int = 64):
        if (model_path is None) == (model is None):
            raise UserError(f"generator '{self.name}' needs model_path (a .keras inpainting model: {SIGNATURE})")
        if int(batch_size) < 1:
            raise UserError(f"generator '{self.name}': batch_size must be >= 1, got {batch_size!r}")
        self.model_path = None if model_path is None else str(model_path)
        self.where = f"inpainting model '{model_path}'" if model_path else "inpainting model"
        if model is None:
            model = load_inpainting_model(model_path)
        else:
            validate_signature(model, where=self.where)
        self.model = model
        self.batch_size = int(batch_size)
        self._predict = None

    def _forward(self, x, m, z):
        if self._predict is None:
            model = self.model

            @tf.function(reduce_retracing=True)
            def predict(a, b, c):
                return model([a, b, c], training=False)

            self._predict = predict
        return self._predict(x, m, z)

    def _fill(self, images, hole, seed, donors):
        n, h, w, c = images.shape
        validate_signature(self.model, (h, w, c), where=self.where)
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((n, h, w, 1)).astype(np.float32)
        m = hole[..., None].astype(np.float32)
        x = images.astype(np.float32) / 255.0 * (1.0 - m)
        outs = []
        for s in range(0, n, self.batch_size):
            y = np.asarray(self._forward(x[s:s + self.batch_size], m[s:s + self.batch_size], noise[s:s + self.batch_size]))
            outs.append(y)
        y = np.concatenate(outs)
        if y.shape != images.shape:
            raise UserError(f"{self.where} returned shape {y.shape} for images {images.shape} ({SIGNATURE})")
        if not np.isfinite(y).all():
            raise UserError(f"{self.where} returned non-finite values")
        return np.clip(y, 0.0, 1.0) * 255.0

    def describe(self) -> dict:
        return {"name": self.name, "params": {"model_path": self.model_path}}
