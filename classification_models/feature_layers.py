"""Feature maps finer than the last conv layer: for cues smaller than one of its cells.

A stride-32 backbone (ResNet50, MobileNetV2, EfficientNetB0) has a 3×3 last-conv grid
at 96 px and 7×7 at 224 px: a 15-px stamp covers at most a few percent of one cell, and
a mask made of whole cells is mostly object. The same model sees the stamp sharply in
an earlier layer. ``spatial_layers`` lists the model's 4-D layer outputs (nested
backbones entered), ``choose_layer`` picks, for a cue of a given size, the deepest
rectified layer whose cells are at most half the cue (and at most ``MIN_STRIDE`` px),
``LayerReader`` reads its activations in compiled batches, and ``grid_facts`` is what
an import reports: the feature grid and the smallest cue the model can localise.
"""
from __future__ import annotations

import dataclasses
import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from classification_models.own_model import _feature_view, find_layer
from common.errors import UserError

#: the auto rule never asks for cells finer than this many pixels (earlier layers see edges, not objects)
MIN_STRIDE = 8
RELU_TYPES = ("ReLU", "ELU", "LeakyReLU")
RELU_NAMES = ("relu", "relu6", "swish", "silu", "gelu", "elu")


@dataclasses.dataclass(frozen=True)
class SpatialLayer:
    """A layer with a ``[N, h, w, K]`` output: ``name`` (``outer/inner`` path), its grid,
    its stride in pixels (image height / h) and whether its output is rectified."""

    name: str
    grid: tuple[int, int, int]
    stride: float
    rectified: bool


def _rectified(layer) -> bool:
    kind = type(layer).__name__
    if kind in RELU_TYPES:
        return True
    act = getattr(layer, "activation", None)
    return (getattr(act, "__name__", None) or str(act)) in RELU_NAMES


def spatial_layers(model) -> list[SpatialLayer]:
    """Every layer with one 4-D output, in order (nested models entered, ``a/b`` names)."""
    image_h = int(model.inputs[0].shape[1])
    out = []

    def walk(scope, prefix):
        for layer in scope.layers:
            if isinstance(layer, keras.Model):
                walk(layer, prefix + [layer.name])
                continue
            if isinstance(layer, keras.layers.InputLayer):
                continue
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):  # a layer used several times has no single output
                continue
            if len(shape) != 4 or shape[1] is None:
                continue
            name = "/".join(prefix + [layer.name])
            out.append(SpatialLayer(name, (int(shape[1]), int(shape[2]), int(shape[3])),
                                    image_h / int(shape[1]), _rectified(layer)))

    walk(model, [])
    return out


def layer_view(model, name: str, *, source: str = "model"):
    """``keras.Model``: the model's input -> the output of layer ``name`` (``a/b`` for a
    layer inside nested model ``a``; a bare name is searched at any depth).

    Raises:
        UserError naming the layer when it does not exist.
    """
    layer = find_layer(model, name, source=source, what="propagation layer")
    stack, scope = [], model
    path = name.split("/") if "/" in name else _path_to(model, layer)
    for part in path[:-1]:
        nested = next(l for l in scope.layers if l.name == part)
        stack.append((nested, nested._inbound_nodes[-1]))
        scope = nested
    if not stack:
        return keras.Model(model.inputs, layer.output, name="layer_view")
    return _feature_view(model, stack, layer.output)


def _path_to(model, target) -> list[str]:
    for layer in model.layers:
        if layer is target:
            return [layer.name]
        if isinstance(layer, keras.Model):
            inner = _path_to(layer, target)
            if inner:
                return [layer.name] + inner
    return []


def cue_size(masks) -> float:
    """Side in pixels of a square with the median area of the non-empty masks ``[N, H, W]`` (0 without one)."""
    areas = (np.asarray(masks) > 0).reshape(len(masks), -1).sum(axis=1) if len(masks) else np.zeros(0)
    areas = areas[areas > 0]
    return float(math.sqrt(np.median(areas))) if len(areas) else 0.0


def choose_layer(model, *, feature_layer: str, cue_px: float) -> SpatialLayer | None:
    """The layer propagation reads for a cue of ``cue_px`` pixels: with ``limit =
    max(cue_px / 2, MIN_STRIDE)``, None (the feature map) when its stride is at most
    ``limit`` (the cue covers whole cells); otherwise the deepest rectified layer (any
    4-D layer when none is rectified) before the feature map on the coarsest grid whose
    stride is at most ``limit``; None when no layer is that fine."""
    layers = spatial_layers(model)
    names = [l.name.split("/")[-1] for l in layers]
    last = feature_layer.split("/")[-1]
    upto = names.index(last) if last in names else len(layers) - 1
    feature = layers[upto] if layers else None
    limit = max(cue_px / 2.0, MIN_STRIDE)
    if feature is None or cue_px <= 0 or feature.stride <= limit + 1e-6:
        return None
    finer = [l for l in layers[:upto] if l.stride <= limit + 1e-6]
    if not finer:
        return None
    finest_grid = max(l.stride for l in finer)  # the coarsest grid that is still fine enough
    at = [l for l in finer if abs(l.stride - finest_grid) < 1e-6]
    rect = [l for l in at if l.rectified]
    return (rect or at)[-1]


def grid_facts(clf) -> dict:
    """What an import reports about resolution: the feature grid, its cell size, and the
    layer (and cell size) propagation reads for the smallest cue it localises."""
    h, w, k = clf.grid_shape
    image_h = clf.input_shape[0]
    finest = choose_layer(clf.model, feature_layer=clf.parts.feature_layer, cue_px=1.0)
    return {"feature_grid": [h, w, k], "cell_px": round(image_h / h, 2),
            "propagation_layer_for_small_cues": None if finest is None else finest.name,
            "smallest_cue_px": round(image_h / h if finest is None else finest.stride, 2)}


_READERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def layer_activations(clf, images, *, layer: str | None, batch_size: int = 64) -> np.ndarray:
    """``[N, h, w, K]`` float32 activations of ``layer`` (None: the feature map) for
    uint8/float pixels ``[N, H, W, C]`` in [0, 255], inference mode, compiled once per
    model and layer."""
    if layer is None:
        return clf.cams(images, classes=0, upsample=False, batch_size=batch_size, return_activations=True).activations
    fns = _READERS.setdefault(clf.model, {})
    if layer not in fns:
        view = layer_view(clf.model, layer, source=clf.source)
        fns[layer] = tf.function(lambda x: view(clf.model_input(x), training=False), reduce_retracing=True)
    out = [fns[layer](tf.cast(images[s:s + batch_size], tf.float32)).numpy()
           for s in range(0, len(images), batch_size)]
    if not out:
        raise UserError("no images to read activations of")
    return np.concatenate(out).astype(np.float32)
