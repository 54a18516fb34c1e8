"""Shared base of the replacement methods (D, E, counterexamples): before the loop,
each selected image gets ``variants`` copies with the masked region replaced by an
``image_generator`` generator; the selected slots of every batch are drawn from these
variants and trained with plain cross-entropy (the mask itself enters no loss)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from common.errors import UserError
from exp_scripts.retrain.methods.base import Method, Pool, ce_and_forward


class ReplacementMethod(Method):
    """Subclasses set ``generator`` (a registry name) or read it from params."""

    generator = ""
    DEFAULTS = {"variants": 4, "include_original": False}

    @classmethod
    def check_params(cls, params):
        if params["variants"] < 1:
            raise UserError(f"method '{cls.name}': variants must be >= 1, got {params['variants']}")

    def generator_spec(self) -> tuple[str, dict]:
        return self.generator, {}

    def prepare(self):
        from image_generator.base import seed_for
        from image_generator.registry import get

        name, gparams = self.generator_spec()
        gen = get(name, **gparams)
        pool = self.pool
        donors = self.ctx.train.images if gen.needs_donors else None
        fills = [gen.replace(images=pool.images, masks=pool.masks, seed=seed_for(self.seed, v), donors=donors)
                 for v in range(self.params["variants"])]
        if self.params["include_original"]:
            fills.append(pool.images)
        k = len(fills)
        self.original_pool = pool
        self.pool = Pool(
            images=np.concatenate(fills),
            labels=np.tile(pool.labels, k),
            masks=np.tile(pool.masks, (k, 1, 1)),
            grid=np.tile(pool.grid, (k, 1, 1)),
            origin=np.tile(pool.origin, k),
        )

    def loss(self, clf, batch):
        _, _, ce = ce_and_forward(clf, batch)
        ce = tf.reduce_mean(ce)
        return ce, {"ce": ce, "penalty": tf.zeros_like(ce)}
