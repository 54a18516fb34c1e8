"""RRR — Right for the Right Reasons (Ross et al. 2017): ``CE + λ·‖M ⊙ ∂Σ_k log p_k/∂x‖²``.

The input gradient is taken only for the batch's masked images (a second forward of
that subset inside a nested tape: double backpropagation), so the cost grows with the
number of masked images. ``lam = null`` calibrates λ so the penalty of the selected
images under the base model equals ``start_penalty`` (an absolute level: matching the base model's CE instead
would make λ vanish when that CE is near 0)."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from classification_models.losses import rrr_penalty
from retraining.methods.base import REGISTRY, MaskParams, Method, ce_and_forward


def input_gradients(clf, images, training: bool):
    """``∂ Σ_k log p_k / ∂x`` ``[n, H, W, C]`` (recorded by any outer tape)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        _, logits = clf.forward(images, training=training)
        s = tf.reduce_sum(tf.nn.log_softmax(logits))
    return tape.gradient(s, images)


@dataclasses.dataclass(frozen=True)
class RRRParams(MaskParams):
    """``lam``: λ (null: calibrated so that the selected images' penalty under the base
    model equals ``start_penalty``)."""

    #: λ (null: calibrated so the selected images' starting penalty is `start_penalty`)
    lam: Optional[float] = dataclasses.field(default=None, metadata={"min": 0.0})
    #: the starting penalty λ is calibrated to
    start_penalty: float = dataclasses.field(default=1.0, metadata={"gt": 0.0})


@REGISTRY.register
class RRR(Method):
    name = "rrr"
    description = "CE + λ‖M ⊙ ∂Σlog p/∂x‖² (input gradients)"
    needs_full_masks = True
    Params = RRRParams

    def raw_penalty(self) -> float:
        x = tf.constant(self.pool.images, tf.float32)
        g = input_gradients(self.clf, x, training=False)
        return float(rrr_penalty(input_gradients=g, masks=(self.pool.masks > 0).astype(np.float32), lam=1.0))

    def prepare(self):
        if self.params.lam is not None:
            self.lam = self.params.lam
            return
        raw = self.raw_penalty()
        self.lam = self.params.start_penalty / raw if raw > 0 else 1.0

    def describe(self):
        out = super().describe()
        if getattr(self, "lam", None) is not None:
            out["resolved"] = {"lam": self.lam}
        return out

    def loss(self, clf, batch):
        _, _, ce = ce_and_forward(clf, batch)
        has = tf.reduce_sum(batch["masks_full"], axis=[1, 2]) > 0
        x = tf.boolean_mask(batch["images"], has)
        g = input_gradients(clf, x, training=True)
        n = tf.cast(tf.shape(batch["images"])[0], tf.float32)
        m = tf.boolean_mask(batch["masks_full"], has)
        # rrr_penalty averages over the masked subset; rescale to a mean over the batch
        pen = rrr_penalty(input_gradients=g, masks=m, lam=self.lam) * tf.cast(tf.shape(x)[0], tf.float32) / n
        ce = tf.reduce_mean(ce)
        return ce + pen, {"ce": ce, "penalty": pen}
