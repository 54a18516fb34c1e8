"""F — selective dropout (thesis §4.4): for each selected image the last-conv maps are
weighted by the CAM class's Dense weights, averaged inside the (grid) mask; the top
``k`` filters are zeroed and the rest rescaled by K/(K−k) before pooling. The scales
are computed once from the base model (``losses.selective_dropout_scale``)."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from classification_models.losses import selective_dropout_scale
from common.errors import UserError
from retraining.methods.base import REGISTRY, MaskParams, Method, ce_and_forward


@dataclasses.dataclass(frozen=True)
class SelectiveDropoutParams(MaskParams):
    """``k``: how many of the filters that fire most inside the mask are zeroed."""

    #: how many of the filters firing most inside the mask are zeroed
    k: int = dataclasses.field(default=20, metadata={"min": 0})


@REGISTRY.register
class SelectiveDropout(Method):
    name = "selective_dropout"
    letter = "F"
    description = "zero the top-k filters inside the mask (CAM-weighted)"
    Params = SelectiveDropoutParams

    def prepare(self):
        self.clf.cam_kernel(f"method '{self.name}'")  # a head without CAM weights is refused here
        kk = self.ctx.grid[2]
        k = self.params.k
        if k >= kk:
            raise UserError(f"method 'selective_dropout': k={k} but the last conv layer has only {kk} filters")
        acts = self.clf.cams(self.pool.images, classes=0, upsample=False, return_activations=True).activations
        w, _ = self.clf.head_weights()
        sel = self.ctx.selected.cam_classes[self.pool.origin]
        self.pool.extra["feature_scale"] = selective_dropout_scale(
            activations=acts, class_weights=w.T[sel], masks=self.pool.grid, k=k)

    def loss(self, clf, batch):
        _, _, ce = ce_and_forward(clf, batch, feature_scale=batch["feature_scale"])
        ce = tf.reduce_mean(ce)
        return ce, {"ce": ce, "penalty": tf.zeros_like(ce)}
