"""I/J — PASA, adjusted selective activation loss (thesis §5.2):
``(1/N)·Σ_a [CE(a) + Act(a)·B^(p_true(a)/th)]``, defaults B = 0.4, th = 0.7.

``PASAWeight`` (B and th) and ``pasa_objective`` are shared with ``swap``'s
``penalty: pasa``.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from classification_models.losses import pasa_loss
from retraining.methods.base import REGISTRY, MaskParams, Method, ce_and_forward


@dataclasses.dataclass(frozen=True)
class PASAWeight:
    """``base`` B and ``threshold`` th of PASA's weight ``B^(p_true/th)``."""

    #: B of `B^(p_true/th)`: below 1 the penalty decays as the true-class probability rises
    base: float = dataclasses.field(default=0.4, metadata={"gt": 0.0})
    #: th of `B^(p_true/th)`
    threshold: float = dataclasses.field(default=0.7, metadata={"gt": 0.0})


@dataclasses.dataclass(frozen=True)
class PASAParams(PASAWeight, MaskParams):
    """``PASAWeight``'s B and th; ``detach_probability``: no gradient through ``p_true``
    in the weight."""

    #: no gradient through `p_true` in the weight
    detach_probability: bool = False


def pasa_objective(*, ce, activations, logits, labels, masks, weight: PASAWeight, detach_probability: bool = False):
    """``(total, penalty)`` of PASA for a batch: ``classification_models.losses.pasa_loss``
    with ``p_true`` the softmax probability of each image's label.

    Args:
        ce: per-example cross-entropy ``[N]``; activations: ``[N, h, w, K]``;
        logits: ``[N, classes]``; labels: int ``[N]``; masks: ``[N, h, w]`` in {0, 1}.
        weight: B and th.
    """
    p_true = tf.gather(tf.nn.softmax(logits), tf.cast(labels, tf.int32), batch_dims=1)
    return pasa_loss(ce=ce, activations=activations, masks=masks, p_true=p_true, base=weight.base,
                     threshold=weight.threshold, detach_probability=detach_probability)


@REGISTRY.register
class PASA(Method):
    name = "pasa"
    letter = "I"
    description = "CE + Act·B^(p_true/th)"
    Params = PASAParams

    def loss(self, clf, batch):
        acts, logits, ce = ce_and_forward(clf, batch)
        total, term = pasa_objective(ce=ce, activations=acts, logits=logits, labels=batch["labels"],
                                     masks=batch["masks"], weight=self.params,
                                     detach_probability=self.params.detach_probability)
        return total, {"ce": tf.reduce_mean(ce), "penalty": term}
