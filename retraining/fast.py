"""The fast path (``"mode": "fast"``): train only the layers after a freeze point, on the
frozen part's outputs computed once.

A retraining step of a whole backbone costs about three forward passes of every image;
when the backbone already encodes the object, retraining its last stage and head on
features with the cue swapped removes most of a spurious correlation (last-layer
retraining, Kirichenko et al. 2022). The frozen part's output is computed once for every
image a method can draw — the training split, the selected images and their variants,
the propagated images' swapped variants, the validation and cue-swapped validation
copies — and kept on disk (``retraining.feature_cache``, read row by row, so memory
does not grow with the split; with ``data.stream`` the training split is read from its
records a chunk at a time to fill the cache); each step then runs only the layers after
the freeze point. The batches are the in-memory full path's batches, drawn by position
with the same random numbers, streamed or not. The whole model is scored afterwards as
usual (its frozen layers are unchanged).

The freeze point (``fast.freeze_up_to``, default ``default_freeze_layer``): the
narrowest layer on the grid before the feature map's last downsampling that every later
layer reads only from — the input of the backbone's last stage, and the cheapest to
cache there (ResNet50 ``conv4_block6_out``, 14×14×1024 at 224 px; MobileNetV2 α 0.35
``block_9_add``, 6×6×24 at 96 px; EfficientNetB0 ``block4c_add``, 14×14×80 at 224 px).

When a linear probe on the frozen features cannot tell the classes apart on the
cue-swapped validation copy (``features_encode_object``), the features do not encode
the object and the run falls back to the full path, saying so.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classification_models.feature_layers import layer_activations, layer_view
from classification_models.own_model import find_layer, freeze, iter_layers
from common.errors import UserError
from retraining.feature_cache import FastMethod, FeatureClassifier, FeatureContext, cache_method

log = logging.getLogger(__name__)

#: methods that differentiate with respect to the input pixels cannot train on features
NEEDS_PIXELS = ("rrr", "rrr_gradcam")


def _producers(scope) -> list[list[int]]:
    """For every layer of ``scope`` (a functional model), the positions of the layers producing its inputs."""
    position = {id(layer): i for i, layer in enumerate(scope.layers)}
    out = []
    for layer in scope.layers:
        found = []
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                op = t._keras_history[0]
                if id(op) in position:
                    found.append(position[id(op)])
        out.append(found)
    return out


def _scope_and_end(clf):
    """``(model holding the feature map's producer, position of that producer in it)``."""
    scope = clf.model
    for part in clf.parts.feature_layer.split("/"):
        layer = next((l for l in scope.layers if l.name == part), None)
        if layer is None:
            break
        if isinstance(layer, keras.Model):
            scope = layer
            continue
        return scope, scope.layers.index(layer)
    return scope, len(scope.layers) - 1


def default_freeze_layer(clf) -> str:
    """The narrowest cut (fewest channels, the last on ties) on the grid just before the
    feature map's last downsampling: a layer every later layer up to the feature map
    reads only from (directly or not) — the input of the last stage. ``a/b`` path for a
    layer inside a nested backbone.

    Raises:
        UserError when the model has no such layer (name one: ``fast.freeze_up_to``).
    """
    scope, end = _scope_and_end(clf)
    producers = _producers(scope)
    layers = scope.layers
    final_h = int(layers[end].output.shape[1])
    earliest, cuts = end, []
    for i in range(end, 0, -1):  # earliest input read by any layer after i
        shape = tuple(layers[i].output.shape)
        if i < end and earliest >= i and len(shape) == 4 and shape[1] is not None and int(shape[1]) > final_h:
            cuts.append((int(shape[-1]), -i))
        earliest = min([earliest] + producers[i])
    if cuts:  # the last stage's input: the finest grid coarser than the feature map
        size = min(int(layers[-c[1]].output.shape[1]) for c in cuts)
        cuts = [c for c in cuts if int(layers[-c[1]].output.shape[1]) == size]
    if not cuts:
        raise UserError(f"{clf.source}: no layer before the last downsampling of the feature map that every later "
                        "layer reads from; name the freeze point (fast.freeze_up_to)")
    best = layers[-min(cuts)[1]]
    prefix = clf.parts.feature_layer.split("/")[:-1] if scope is not clf.model else []
    if scope is not clf.model and scope.name not in prefix:
        prefix = [scope.name]
    return "/".join(prefix + [best.name])


@dataclasses.dataclass
class FeatureSplit:
    """The model cut at ``layer``: ``frozen`` (model pixels -> its output) and ``top``
    (its output -> the feature map), sharing the model's layers."""

    layer: str
    frozen: object
    top: object


def split_model(clf, layer: str) -> FeatureSplit:
    """Cuts ``clf``'s model after ``layer`` and freezes everything up to it.

    Raises:
        UserError naming the layer when it does not exist or is not a cut (a later
        layer reads from before it).
    """
    target = find_layer(clf.model, layer, source="fast.freeze_up_to", what="layer")
    scope, end = _scope_and_end(clf)
    if target not in scope.layers:
        raise UserError(f"fast.freeze_up_to: layer '{layer}' is not in the part of the model holding the feature map "
                        f"('{scope.name}')")
    i = scope.layers.index(target)
    producers = _producers(scope)
    late = [(j, p) for j in range(i + 1, end + 1) for p in producers[j] if p < i]
    if late or i >= end:
        why = (f"layer '{scope.layers[late[0][0]].name}' after it reads '{scope.layers[late[0][1]].name}' before it"
               if late else "it is the feature map or after it")
        raise UserError(f"fast.freeze_up_to: layer '{layer}' is not a freeze point: {why}")
    top = keras.Model(target.output, scope.layers[end].output, name="top")
    frozen = layer_view(clf.model, layer, source="fast.freeze_up_to")
    before = [l for l in _flat(clf.model)[:_flat_index(clf.model, target) + 1]
              if type(l).__name__ == "BatchNormalization" and l.trainable]
    if before:
        log.info("fast path: %d batch-norm layer(s) up to '%s' are frozen and run in inference mode (their "
                 "statistics are the model's own; the cached features depend on them)", len(before), layer)
    freeze(clf.model, up_to=target.name, source="fast.freeze_up_to")
    return FeatureSplit(layer=layer, frozen=frozen, top=top)


def _flat(model):
    return list(iter_layers(model))


def _flat_index(model, layer) -> int:
    return next(i for i, l in enumerate(_flat(model)) if l is layer)


def features_encode_object(features: np.ndarray, labels: np.ndarray, *, margin: float, seed: int = 0) -> dict:
    """A linear probe (scikit-learn logistic regression, 3-fold cross-validated) on the
    spatially averaged frozen features ``[N, h, w, K]`` of cue-swapped images: when it
    cannot beat chance by ``margin`` of the way to 1, the features do not encode the
    object and training only the later layers cannot fix the model.

    Returns:
        ``{"probe_accuracy", "chance", "needed", "encodes"}``.
    """
    x = np.asarray(features, np.float64).mean(axis=(1, 2))
    y = np.asarray(labels)
    counts = np.bincount(y)
    chance = float(counts.max() / len(y))
    folds = int(min(3, counts[counts > 0].min()))
    if folds < 2:
        return {"probe_accuracy": None, "chance": chance, "needed": None, "encodes": True}
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    acc = float(cross_val_score(probe, x, y, cv=folds).mean())
    needed = chance + margin * (1.0 - chance)
    return {"probe_accuracy": round(acc, 4), "chance": round(chance, 4), "needed": round(needed, 4),
            "encodes": acc >= needed}


def plan_fast_path(base, *, freeze_up_to: str | None, val_swap, margin: float, seed: int) -> dict:
    """The run's path, decided once on the base model: ``{"path": "fast" | "full",
    "freeze_up_to", "why", probe numbers}``. The freeze layer is checked here (a name the
    model lacks, or a layer a later one reads around, fails naming it)."""
    layer = freeze_up_to or default_freeze_layer(base)
    split_model(base.clone(), layer)  # checks the cut (on a copy: the base stays trainable)
    plan = {"path": "fast", "freeze_up_to": layer,
            "why": "fast.freeze_up_to" if freeze_up_to else "the narrowest block output before the last downsampling"}
    if val_swap is None:
        return {**plan, "probe": None}
    feats = layer_activations(base, val_swap.images, layer=layer)
    probe = features_encode_object(feats, val_swap.labels, margin=margin, seed=seed)
    plan["probe"] = probe
    if not probe["encodes"]:
        log.warning("fast path: a linear probe on the features of '%s' reaches %.2f on the cue-swapped validation "
                    "copy (chance %.2f, needed %.2f): they do not encode the object; the run takes the full path",
                    layer, probe["probe_accuracy"], probe["chance"], probe["needed"])
        plan.update(path="full", why="the frozen features do not encode the object (linear probe)")
    return plan


def wrap(method, plan: dict, *, val, val_swap, cache_dir: str | None = None):
    """``(method to run, val, val_swap, path info)``: on the fast path the method on
    cached features (its classifier's layers up to the freeze point frozen), and the
    validation sets as features; otherwise the method unchanged (with the reason). The
    path info says whether the training split is ``streamed`` (``data.stream``)."""
    plan = {**plan, "streamed": bool(method.ctx.streaming)}
    if plan["path"] != "fast":
        return method, val, val_swap, plan
    if method.name in NEEDS_PIXELS:
        return method, val, val_swap, {**plan, "path": "full", "why": f"{method.name} needs input gradients"}
    started = time.perf_counter()
    clf, layer = method.clf, plan["freeze_up_to"]
    split = split_model(clf, layer)
    stores, feats_sel, folder = cache_method(method, layer, val=val, val_swap=val_swap, cache_dir=cache_dir)
    wrapped = FastMethod(method, FeatureClassifier(clf, split.top), stores, FeatureContext(feats_sel, stores["train"]),
                         folder, labels=method.ctx.train_labels())
    val = None if val is None else (stores["val"], val[1])
    val_swap = None if val_swap is None else (stores["val_swap"], val_swap[1])
    cached = sum(s.n for s in stores.values())
    info = {**plan, "feature_shape": list(stores["train"].shape), "cached_images": int(cached),
            "cache_seconds": round(time.perf_counter() - started, 2)}
    log.info("  %s: fast path from '%s' (%s): %d images' features cached in %.1f s%s", method.label, layer,
             "×".join(map(str, info["feature_shape"])), cached, info["cache_seconds"],
             " (the training split read from its records)" if method.ctx.streaming else "")
    return wrapped, val, val_swap, info


def plan_for(cfg, base, val_cf) -> dict:
    """The run's path for a ``RetrainConfig`` (``mode``, ``fast``)."""
    if cfg.mode == "full":
        return {"path": "full", "why": "mode: full"}
    return plan_fast_path(base, freeze_up_to=cfg.fast.freeze_up_to, val_swap=val_cf, margin=cfg.fast.probe_margin,
                          seed=cfg.seed)


def method_on_path(method, plan: dict, *, val, val_cf, cache_dir: str | None):
    """``wrap`` for the runner: records the path in ``method.path`` (``run.json``)."""
    run, val, val_swap, method.path = wrap(method, plan, val=val, cache_dir=cache_dir,
                                           val_swap=None if val_cf is None else (val_cf.images, val_cf.labels))
    return run, val, val_swap
