"""Shared base of the replacement methods (D, E, counterexamples): before the loop,
each selected image gets ``variants`` copies with the masked region replaced by an
``image_generator`` generator; the selected slots of every batch are drawn from these
variants and trained with plain cross-entropy (the mask itself enters no loss)."""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from common.errors import UserError
from image_generator.base import variants
from image_generator.registry import generator_class, get
from retraining.methods.base import MaskParams, Method, Pool, ce_and_forward


@dataclasses.dataclass(frozen=True)
class ReplacementParams(MaskParams):
    """``variants`` replaced copies per selected image (``include_original``: the image
    itself too); a fill must differ from the original by ``min_diff`` (mean grey level
    inside the mask) within ``max_tries`` draws."""

    #: replaced copies per selected image
    variants: int = dataclasses.field(default=4, metadata={"min": 1})
    #: the selected image itself joins its variants
    include_original: bool = False
    #: a fill must differ from the original by this mean grey level inside the mask
    min_diff: float = dataclasses.field(default=8.0, metadata={"min": 0.0, "max": 255.0})
    #: draws per fill before it is reported and left out
    max_tries: int = dataclasses.field(default=5, metadata={"min": 1})


class ReplacementMethod(Method):
    """Subclasses set ``generator`` (a registry name) or read it from params."""

    generator = ""
    Params = ReplacementParams

    def describe(self) -> dict:
        out = super().describe()
        if getattr(self, "fill_report", None) is not None:
            out["fills"] = self.fill_report
        return out

    def generator_spec(self) -> tuple[str, dict]:
        return self.generator, {}

    def whole_train_need(self) -> str | None:
        name = self.generator_spec()[0]
        if generator_class(name).needs_donors:
            return f"takes its fills from donor images anywhere in the training split (generator '{name}')"
        return None

    def prepare(self):
        """Draws ``variants`` checked fills per selected image (``image_generator.base.variants``).

        A fill that differs from the original inside the mask by less than ``min_diff``
        (mean absolute difference, pixel units) is redrawn up to ``max_tries`` times and
        then left out and reported in ``run.json`` — the check that replaces the thesis's
        inspection of every replacement by eye (§4.2). Deterministic generators (OpenCV)
        give one fill per image: identical copies would only re-weight the batch.
        """
        name, gparams = self.generator_spec()
        gen = get(name, **gparams)
        pool = self.pool
        donors = self.ctx.train.images if gen.needs_donors else None
        n = self.params.variants if gen.stochastic else 1
        res = variants(gen, images=pool.images, masks=pool.masks, n=n, seed=self.seed,
                       min_diff=float(self.params.min_diff), max_tries=int(self.params.max_tries),
                       donors=donors, on_failure="report")
        keep_i, keep_j = np.nonzero(res.ok)
        self.fill_report = {
            "generator": name, "per_image": n, "kept": int(len(keep_i)), "rejected": int((~res.ok).sum()),
            "min_diff": float(self.params.min_diff),
            "mean_in_mask_diff": float(res.diffs[res.ok].mean()) if len(keep_i) else None,
            "diversity": None if n < 2 else float(np.nanmean(res.diversity)),
        }
        if len(keep_i) == 0:
            raise UserError(f"method '{self.label}': every fill of generator '{name}' stays within "
                            f"{self.params.min_diff} of the original inside the mask ({res.report()})")
        images = [res.images[keep_i, keep_j]]
        origin = [keep_i]
        if self.params.include_original:
            images.append(pool.images)
            origin.append(np.arange(len(pool)))
        origin = np.concatenate(origin)
        self.original_pool = pool
        self.pool = Pool(
            images=np.concatenate(images),
            labels=pool.labels[origin],
            masks=pool.masks[origin],
            grid=pool.grid[origin],
            origin=pool.origin[origin],
        )

    def loss(self, clf, batch):
        _, _, ce = ce_and_forward(clf, batch)
        ce = tf.reduce_mean(ce)
        return ce, {"ce": ce, "penalty": tf.zeros_like(ce)}
