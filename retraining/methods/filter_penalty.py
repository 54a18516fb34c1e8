"""The filter-level penalty: the last-conv filters that fire inside the expert's masks
(ranked by ``retraining.propagate.propagate_selection``, the ``propagation.top`` with at
least ``propagation.min_share`` of their activation inside the masks) are penalised on
every image of the batch, masked or not: ``λ · mean_a max_{b,c} Σ_{k∈F} A_k(a,b,c) / reference``,
``reference`` the level at which those filters fire on the masked images.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from common.errors import UserError
from retraining.methods.base import REGISTRY, MaskParams, Method, ce_and_forward


@dataclasses.dataclass(frozen=True)
class FilterPenaltyParams(MaskParams):
    """``lam``: the penalty's weight (in units of the level at which the chosen filters
    fire on the masked images)."""

    #: the penalty's weight, in units of the chosen filters' level on the masked images
    lam: float = dataclasses.field(default=1.0, metadata={"min": 0.0})


@REGISTRY.register
class FilterPenalty(Method):
    name = "filter_penalty"
    letter = ""
    description = "the filters firing inside the masks penalised on every image"
    Params = FilterPenaltyParams

    def prepare(self):
        self.prop = self.ctx.propagated(self.clf, masks=self.feedback_masks)
        if not len(self.prop.filters):
            raise UserError(f"method '{self.label}': no filter has most of its activation inside the masks "
                            "(propagation chose none); nothing to penalise")
        acts = self.clf.cams(self.pool.images, classes=0, upsample=False, return_activations=True).activations
        # the level at which the chosen filters fire on the masked images: the penalty's unit
        fired = acts[..., self.prop.filters].sum(-1).reshape(len(acts), -1).max(axis=1)
        self.reference = max(float(fired.mean()), 1e-6)
        onehot = np.zeros(self.ctx.grid[2], np.float32)
        onehot[self.prop.filters] = 1.0
        self.filter_weights = tf.constant(onehot)

    def describe(self) -> dict:
        out = super().describe()
        if getattr(self, "prop", None) is not None:
            out["propagated"] = self.prop.describe()
        return out

    def loss(self, clf, batch):
        acts, _, ce = ce_and_forward(clf, batch)
        ce = tf.reduce_mean(ce)
        fired = tf.reduce_sum(acts * self.filter_weights, axis=-1)  # [N, h, w]
        pen = self.params.lam * tf.reduce_mean(tf.reduce_max(fired, axis=[1, 2])) / self.reference
        return ce + pen, {"ce": ce, "penalty": pen}
