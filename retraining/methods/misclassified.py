"""B — misclassified emphasis (thesis §3.3): each batch is 30 % random training
images and 70 % training images the base model misclassifies at the start.

A base model that fits its training set leaves few or no misclassified images; the
emphasis pool is then topped up to ``min_pool`` with the lowest true-class probability
images (reported in ``run.json`` as ``n_misclassified`` / ``n_low_confidence``, and
``min_pool = 0`` turns this off: an empty pool is then an error)."""
from __future__ import annotations

import dataclasses

import numpy as np

from common.errors import UserError
from retraining.methods.base import REGISTRY
from retraining.methods.continued import Continued


@dataclasses.dataclass(frozen=True)
class MisclassifiedParams:
    """``share``: the emphasised share of each batch; ``min_pool``: the emphasis pool's
    minimum size (topped up with the lowest true-class probability images)."""

    #: share of each batch drawn from the images misclassified at the start
    share: float = dataclasses.field(default=0.7, metadata={"min": 0.0, "max": 1.0})
    #: the emphasis pool's minimum size (topped up with the least sure images)
    min_pool: int = dataclasses.field(default=20, metadata={"min": 0})


@REGISTRY.register
class Misclassified(Continued):
    name = "misclassified"
    letter = "B"
    description = "30% random / 70% initially misclassified images, plain CE"
    Params = MisclassifiedParams
    whole_train = "scores every training image at the start and draws the misclassified ones by position"

    def prepare(self):
        train = self.ctx.train
        probs = self.clf.predict_proba(train.images)
        wrong = np.flatnonzero(probs.argmax(1) != train.labels)
        self.n_misclassified = int(len(wrong))
        extra = np.zeros(0, np.int64)
        if len(wrong) < self.params.min_pool:
            p_true = probs[np.arange(len(train)), train.labels]
            known = set(wrong.tolist())
            order = [i for i in np.argsort(p_true, kind="stable") if i not in known]
            extra = np.asarray(order[: self.params.min_pool - len(wrong)], np.int64)
        self.n_low_confidence = int(len(extra))
        self.wrong = np.concatenate([wrong, extra]).astype(np.int64)
        if len(self.wrong) == 0:
            raise UserError("method 'misclassified': the base model classifies every training image correctly; "
                            "there is nothing to emphasise")

    def describe(self):
        out = super().describe()
        if hasattr(self, "n_misclassified"):
            out["resolved"] = {"n_misclassified": self.n_misclassified, "n_low_confidence": self.n_low_confidence}
        return out

    def sample_positions(self, rng):
        total = self.batch_random + self.batch_selected
        n_wrong = int(round(self.params.share * total))
        wrong = rng.choice(self.wrong, size=n_wrong, replace=n_wrong > len(self.wrong))
        rand = rng.choice(len(self.ctx.train), size=total - n_wrong, replace=total - n_wrong > len(self.ctx.train))
        return np.concatenate([rand, wrong]).astype(np.int64), np.zeros(0, np.int64)
