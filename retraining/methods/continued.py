"""A — continued training (thesis §3.3): plain cross-entropy on the same batches
(random training images + the selected images, masks ignored)."""
from __future__ import annotations

import tensorflow as tf

from retraining.methods.base import REGISTRY, Method, NoParams, ce_and_forward


@REGISTRY.register
class Continued(Method):
    name = "continued"
    letter = "A"
    description = "continued training, plain CE"
    needs_selection = False
    uses_masks = False
    Params = NoParams

    def loss(self, clf, batch):
        _, _, ce = ce_and_forward(clf, batch)
        ce = tf.reduce_mean(ce)
        return ce, {"ce": ce, "penalty": tf.zeros_like(ce)}
