"""Stale batch-norm statistics in an imported model.

A model trained from scratch on a small set with Keras's default batch-norm momentum
(0.99, 0.999 in some ``keras.applications`` backbones) can reach a high training accuracy
while its moving statistics still describe the first steps: in inference mode it scores
near chance on the very images it fits. ``batch_norm_check`` compares, on one batch of
training images, the accuracy in inference mode (moving statistics) with the accuracy on
the batch's own statistics; a large gap says the moving statistics are stale, and
``classification_models.training.recalibrate_batch_norm`` repairs them.
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from classification_models.training import recalibrate_batch_norm

#: a gap (batch statistics − moving statistics) in training accuracy at least this large
#: marks the moving statistics as stale
STALE_GAP = 0.25


@dataclasses.dataclass(frozen=True)
class BatchNormCheck:
    """One batch of training images scored both ways.

    Attributes:
        layers: the model's batch-normalisation layers (nested models included).
        momentum: the largest momentum among them.
        inference_accuracy: accuracy with the moving statistics (what the user's model predicts).
        batch_accuracy: accuracy with the batch's own statistics.
        n: images scored.
    """

    layers: int
    momentum: float
    inference_accuracy: float
    batch_accuracy: float
    n: int

    @property
    def stale(self) -> bool:
        return self.batch_accuracy - self.inference_accuracy >= STALE_GAP

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "stale": self.stale}


def batch_norm_layers(model) -> list:
    """Every batch-normalisation layer of ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def batch_norm_check(clf, images: np.ndarray, labels: np.ndarray) -> BatchNormCheck | None:
    """``clf``'s accuracy on ``images`` with moving and with batch statistics; None when the
    model has no batch-normalisation layer. The model is left exactly as it was (the
    training-mode pass's updates of the moving statistics and other state are undone)."""
    layers = batch_norm_layers(clf.model)
    if not layers or not len(images):
        return None
    labels = np.asarray(labels)
    inference = float((clf.predict_proba(images).argmax(1) == labels).mean())
    state = [(v, v.numpy()) for v in clf.model.non_trainable_variables]
    try:
        # batch statistics; dropout layers stay in inference mode (only the head trains them)
        logits = _batch_statistics_logits(clf, images)
    finally:
        for v, value in state:
            v.assign(value)
    batch = float((np.asarray(logits).argmax(1) == labels).mean())
    return BatchNormCheck(layers=len(layers), momentum=float(max(layer.momentum for layer in layers)),
                          inference_accuracy=inference, batch_accuracy=batch, n=int(len(labels)))


def _batch_statistics_logits(clf, images: np.ndarray):
    """Logits of one forward pass where every batch-normalisation layer normalises with
    the batch's own statistics and every other layer runs in inference mode."""
    layers = batch_norm_layers(clf.model)
    calls = [layer.call for layer in layers]
    try:
        for layer, call in zip(layers, calls):
            layer.call = (lambda c: lambda inputs, training=None, mask=None: c(inputs, training=True, mask=mask))(call)
        return clf.forward(tf.convert_to_tensor(images, tf.float32), training=False)[1]
    finally:
        for layer, call in zip(layers, calls):
            layer.call = call


def recalibrate(clf, batches) -> int:
    """Replaces the moving statistics of ``clf``'s training batch-norm layers by the average
    of their batch statistics over ``batches`` (uint8/float ``[N, H, W, C]`` image arrays);
    returns the number of layers recalibrated."""
    forward = tf.function(lambda x: clf.forward(x, training=True)[1], reduce_retracing=True)
    return recalibrate_batch_norm(clf.model, forward, (tf.convert_to_tensor(b, tf.float32) for b in batches))
