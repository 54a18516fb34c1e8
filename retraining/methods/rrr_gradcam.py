"""RRR-G (Schramowski et al. 2020): ``CE + λ·‖M ⊙ GradCAM_true‖²`` on the activation grid.

For the GAP → Dense head Grad-CAM is ReLU(CAM)/(h·w) exactly
(``losses.gradcam_gap``), so no second backpropagation is needed. ``lam = null``
calibrates λ so the selected images' starting penalty equals ``start_penalty``."""
from __future__ import annotations

import tensorflow as tf

from classification_models.losses import gradcam_gap, rrr_gradcam_penalty
from retraining.methods.base import REGISTRY, ce_and_forward
from retraining.methods.rrr import RRR


@REGISTRY.register
class RRRGradCAM(RRR):
    name = "rrr_gradcam"
    description = "CE + λ‖M ⊙ GradCAM‖² (Grad-CAM of the true class)"
    needs_full_masks = False

    def _kernel(self, clf):
        return clf.cam_kernel(f"method '{self.name}'")

    def prepare(self):
        self._kernel(self.clf)  # refuses a head without CAM weights before any work
        super().prepare()

    def raw_penalty(self) -> float:
        acts = self.clf.cams(self.pool.images, classes=0, upsample=False, return_activations=True).activations
        gc = gradcam_gap(activations=acts, weights=self._kernel(self.clf), classes=self.pool.labels)
        return float(rrr_gradcam_penalty(gradcam=gc, masks=self.pool.grid, lam=1.0))

    def loss(self, clf, batch):
        acts, _, ce = ce_and_forward(clf, batch)
        gc = gradcam_gap(activations=acts, weights=self._kernel(clf), classes=batch["labels"])
        pen = rrr_gradcam_penalty(gradcam=gc, masks=batch["masks"], lam=self.lam)
        ce = tf.reduce_mean(ce)
        return ce + pen, {"ce": ce, "penalty": pen}
