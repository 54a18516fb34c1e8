"""G/H — PAS, selective activation loss (thesis §5.1): ``CE + (λ/N)·Σ|M·A|``.

λ presets:

* ``"thesis"``: λ = 1/(5·h·w·K) with the thesis's batch normalisation (÷N);
* ``"calibrated"`` (default): λ = ``CALIBRATED_SCALE`` × 1/(5·h·w·K), normalised by the
  number of masked images in the batch (so λ does not depend on the masked share).
  ``CALIBRATED_SCALE`` is chosen by the λ sweep (``exp_backprops --sweep lambda``)
  on a validation split free of the shortcut (docs/benchmark_log.md).

``lam`` gives λ directly; ``lam_scale`` multiplies the thesis λ.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf

from classification_models.losses import PAS_NORMALIZATIONS, pas_loss, thesis_pas_lambda
from retraining.methods.base import REGISTRY, MaskParams, Method, ce_and_forward

CALIBRATED_SCALE = 100.0
PRESETS = {"thesis": (1.0, "batch"), "calibrated": (CALIBRATED_SCALE, "masked")}


@dataclasses.dataclass(frozen=True)
class PASParams(MaskParams):
    """``preset`` (λ scale and normalisation, above); ``lam`` λ itself or ``lam_scale`` ×
    the thesis λ; ``normalize`` overrides the preset's normalisation."""

    #: `thesis`: λ = 1/(5·h·w·K), ÷N; `calibrated`: 100× that, ÷ masked images in the batch
    preset: str = dataclasses.field(default="calibrated", metadata={"choices": tuple(PRESETS)})
    #: λ itself (overrides the preset's)
    lam: Optional[float] = dataclasses.field(default=None, metadata={"min": 0.0})
    #: λ as a multiple of the thesis λ (overrides the preset's)
    lam_scale: Optional[float] = dataclasses.field(default=None, metadata={"min": 0.0})
    #: divide the penalty by the `batch` size or the `masked` images in it (overrides the preset's)
    normalize: Optional[str] = dataclasses.field(default=None, metadata={"choices": PAS_NORMALIZATIONS})


@REGISTRY.register
class PAS(Method):
    name = "pas"
    letter = "G"
    description = "CE + (λ/N)·Σ|M·A| on the last conv"
    Params = PASParams

    def prepare(self):
        h, w, k = self.ctx.grid
        scale, norm = PRESETS[self.params.preset]
        if self.params.lam_scale is not None:
            scale = self.params.lam_scale
        self.lam = self.params.lam if self.params.lam is not None else scale * thesis_pas_lambda(h=h, w=w, k=k)
        self.normalize = self.params.normalize or norm

    def describe(self):
        out = super().describe()
        if getattr(self, "lam", None) is not None:
            out["resolved"] = {"lam": self.lam, "normalize": self.normalize}
        return out

    def loss(self, clf, batch):
        acts, _, ce = ce_and_forward(clf, batch)
        total, pen = pas_loss(ce=ce, activations=acts, masks=batch["masks"], lam=self.lam, normalize=self.normalize)
        return total, {"ce": tf.reduce_mean(ce), "penalty": pen}
