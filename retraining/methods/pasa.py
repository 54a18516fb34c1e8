"""I/J — PASA, adjusted selective activation loss (thesis §5.2):
``(1/N)·Σ_a [CE(a) + Act(a)·B^(p_true(a)/th)]``, defaults B = 0.4, th = 0.7."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from classification_models.losses import pasa_loss
from retraining.methods.base import REGISTRY, MaskParams, Method, ce_and_forward


@dataclasses.dataclass(frozen=True)
class PASAParams(MaskParams):
    """``base`` B and ``threshold`` th of ``B^(p_true/th)``; ``detach_probability``: no
    gradient through ``p_true`` in the weight."""

    base: float = dataclasses.field(default=0.4, metadata={"gt": 0.0})
    threshold: float = dataclasses.field(default=0.7, metadata={"gt": 0.0})
    detach_probability: bool = False


@REGISTRY.register
class PASA(Method):
    name = "pasa"
    letter = "I"
    description = "CE + Act·B^(p_true/th)"
    Params = PASAParams

    def loss(self, clf, batch):
        acts, logits, ce = ce_and_forward(clf, batch)
        p = tf.gather(tf.nn.softmax(logits), tf.cast(batch["labels"], tf.int32), batch_dims=1)
        total, term = pasa_loss(ce=ce, activations=acts, masks=batch["masks"], p_true=p,
                                base=self.params.base, threshold=self.params.threshold,
                                detach_probability=self.params.detach_probability)
        return total, {"ce": tf.reduce_mean(ce), "penalty": term}
