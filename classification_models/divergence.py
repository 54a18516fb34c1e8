"""Divergence: the one check, shared by base training and retraining, that a step left the
loss, every weight and the predicted probabilities finite, and the one message that says
where it did not (``method pas diverged at iteration 3 of 100: the loss became nan
(learning_rate 1e+06)``)."""
from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf


def first_nonfinite_weight(model) -> str | None:
    """The path of the first weight of ``model`` holding NaN or ±inf, None when all are finite.

    A diverging step can leave the loss it reports finite and still write NaN into the
    weights (the loss is computed before the update), so training checks both.
    """
    if bool(_all_finite_check()([v.value for v in model.weights])):  # a boolean to the host, not the weights
        return None
    for v in model.weights:
        if not np.isfinite(np.asarray(v.numpy())).all():
            return v.path
    return None


@functools.cache
def _all_finite_check():
    """One compiled test that every tensor of a list is finite (built on first use)."""
    return tf.function(lambda ws: tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(w)) for w in ws])),
                       reduce_retracing=True)


def nonfinite_step(loss: float, model) -> str | None:
    """What a training step made non-finite — ``the loss became nan`` or ``weight '…'
    became non-finite`` — or None when the loss and every weight of ``model`` are finite."""
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    bad_weight = first_nonfinite_weight(model)
    return None if bad_weight is None else f"weight '{bad_weight}' became non-finite"


def nonfinite_probs(probs: np.ndarray, *, where: str) -> str | None:
    """``the predicted probabilities of the <where> became non-finite`` when ``probs`` holds
    NaN or ±inf, else None. A finite loss can hide overflowing logits on other images (or
    in inference mode, with batch-norm statistics that exploded): every later number would
    be noise."""
    return None if np.isfinite(probs).all() else f"the predicted probabilities of the {where} became non-finite"


def diverged_message(*, what_ran: str, at: str, what: str, learning_rate: float | None) -> str:
    """The one-line divergence message: ``<what_ran> diverged at <at>: <what> (learning_rate r)``."""
    rate = "?" if learning_rate is None else f"{learning_rate:g}"
    return f"{what_ran} diverged at {at}: {what} (learning_rate {rate})"
