"""I/J — PASA, adjusted selective activation loss (thesis §5.2):
``(1/N)·Σ_a [CE(a) + Act(a)·B^(p_true(a)/th)]``, defaults B = 0.4, th = 0.7."""
from __future__ import annotations

import tensorflow as tf

from classification_models.losses import pasa_loss
from common.errors import UserError
from exp_scripts.retrain.methods.base import Method, ce_and_forward


class PASA(Method):
    name = "pasa"
    letter = "I"
    description = "CE + Act·B^(p_true/th)"
    DEFAULTS = {"base": 0.4, "threshold": 0.7, "detach_probability": False}

    @classmethod
    def check_params(cls, params):
        if params["base"] <= 0 or params["threshold"] <= 0:
            raise UserError(f"method 'pasa': base and threshold must be > 0, got {params['base']}, {params['threshold']}")

    def loss(self, clf, batch):
        acts, logits, ce = ce_and_forward(clf, batch)
        p = tf.gather(tf.nn.softmax(logits), tf.cast(batch["labels"], tf.int32), batch_dims=1)
        total, term = pasa_loss(ce=ce, activations=acts, masks=batch["masks"], p_true=p,
                                base=self.params["base"], threshold=self.params["threshold"],
                                detach_probability=self.params["detach_probability"])
        return total, {"ce": tf.reduce_mean(ce), "penalty": term}
