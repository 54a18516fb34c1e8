"""Counterfactual swaps: making a few masks count for many images.

``swap``: the masked region of an image is replaced by the same region of another
image (``image_generator.swap.cue_swap``: pixels irrelevant in both, the rest
inpainted) while the label stays, so the cue stops predicting the class. The donors
come from every class (``donors: "any"``): donors of other classes only would turn the
cue into an anti-cue ("this is class B's background, so not B"), which a model learns
as readily as the cue itself — changing what
the data says instead of penalising what the model looks at. With ``propagate`` the
expert's masks are first extended to the training images where the same last-conv
filters fire (``retraining.propagate.propagate_selection``) and the random images
of every batch that carry a propagated mask are swapped too. ``penalty`` adds PAS or
PASA on the swapped images' masks.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from classification_models.losses import pas_loss, thesis_pas_lambda
from classification_models.mask_ops import dilate
from classification_models.training import shrink_and_perturb
from common.errors import UserError
from image_generator.swap import cue_swap
from retraining.methods.base import REGISTRY, MaskParams, Method, Pool, ce_and_forward
from retraining.methods.pas import CALIBRATED_SCALE
from retraining.methods.pasa import PASAWeight, pasa_objective

#: keys of earlier versions -> what replaced them
RENAMED = {"pasa_base": '"pasa": {"base": ...}', "pasa_threshold": '"pasa": {"threshold": ...}'}


@dataclasses.dataclass(frozen=True)
class SwapParams(MaskParams):
    """``variants`` swapped copies per masked image, each the best of ``candidates``
    donors; ``propagate`` the masks to other training images and swap ``random_share`` of
    the batch's random images that carry one; ``donors`` of ``any`` class or ``other``
    classes only; ``penalty`` PAS (``lam_scale`` × the thesis λ) or PASA (``pasa``: its
    B and th, ``retraining.methods.pasa.PASAWeight``) on the swapped images' masks; ``shrink`` < 1 or ``perturb`` > 0
    start from the base model's weights shrunk and perturbed
    (``classification_models.training.shrink_and_perturb``), after the propagation has used
    them: an investigation for a base that learned only the cue."""

    #: swapped copies per masked image
    variants: int = dataclasses.field(default=4, metadata={"min": 1})
    #: extend the masks to other training images and swap those too
    propagate: bool = True
    #: share of a batch's random images with a propagated mask that are swapped
    random_share: float = dataclasses.field(default=1.0, metadata={"min": 0.0, "max": 1.0})
    #: donors tried per swap (the best fitting one is used)
    candidates: int = dataclasses.field(default=8, metadata={"min": 1})
    #: adds PAS or PASA on the swapped images' masks
    penalty: str = dataclasses.field(default="none", metadata={"choices": ("none", "pas", "pasa")})
    #: donor images from `any` class or from `other` classes only
    donors: str = dataclasses.field(default="any", metadata={"choices": ("any", "other")})
    #: PAS penalty's λ as a multiple of the thesis λ (`penalty: pas`)
    lam_scale: float = dataclasses.field(default=CALIBRATED_SCALE, metadata={"min": 0.0})
    #: PASA's B and th on the swapped images' masks (`penalty: pasa`)
    pasa: PASAWeight = dataclasses.field(default_factory=PASAWeight)
    #: start from the base weights multiplied by this (after propagation)
    shrink: float = dataclasses.field(default=1.0, metadata={"min": 0.0, "max": 1.0})
    #: plus Gaussian noise of this scale relative to each weight tensor's spread
    perturb: float = dataclasses.field(default=0.0, metadata={"min": 0.0})
    #: widen the propagated masks by this many feature-grid cells before swapping (0.5: half a cell)
    widen: float = dataclasses.field(default=0.0, metadata={"min": 0.0, "max": 4.0})


def widen_masks(masks: np.ndarray, *, cells: float, grid_hw) -> np.ndarray:
    """uint8 ``[N, H, W]`` masks (255 = irrelevant) widened by ``cells`` feature-grid cells
    (rounded up to whole pixels): a propagated mask drawn from cells rarely covers a cue's
    edges, and the part of the image's own cue left outside it keeps predicting the label."""
    if cells <= 0 or not len(masks):
        return masks
    h, w = masks.shape[1:3]
    pixels = int(np.ceil(cells * max(h / grid_hw[0], w / grid_hw[1])))
    return (dilate(masks, pixels=pixels) > 0).astype(np.uint8) * 255


@REGISTRY.register
class Swap(Method):
    name = "swap"
    letter = ""
    description = "masked region <- same region of another class's image (label kept); propagated to other images"
    Params = SwapParams

    @classmethod
    def resolve_params(cls, params: dict):
        old = sorted(set(params) & set(RENAMED))
        if old:
            raise UserError(f"method '{cls.name}' params: '{old[0]}' is now {RENAMED[old[0]]} "
                            "(PASA's B and th, named as in method 'pasa')")
        return super().resolve_params(params)

    def prepare(self):
        if len(np.unique(self.ctx.train_labels())) < 2:
            raise UserError(f"method '{self.label}': a swap needs at least two classes in the training split")
        pool = self.pool
        prop = self.ctx.propagated(self.clf, masks=self.feedback_masks) if self.params.propagate else None
        self.prop = prop
        has_prop = prop is not None and len(prop.positions)
        prop_masks = None
        if has_prop:
            prop_images = prop.images if prop.images is not None else self.ctx.train.images[prop.positions]
            prop_masks = widen_masks(prop.masks, cells=self.params.widen, grid_hw=self.ctx.grid[:2])
        # donors: every image with a mask (the expert's and the propagated ones) ...
        d_img, d_mask, d_lab = [pool.images], [pool.masks], [pool.labels]
        if has_prop:
            d_img.append(prop_images)
            d_mask.append(prop_masks)
            d_lab.append(prop.labels)
        # ... and, without a known region, the fallback donors when no image of another class
        # has a mask (e.g. all masked images of one class, nothing propagated): every
        # training image, or with data.stream the bank's and the selected images
        if self.ctx.streaming:
            extra_img, extra_lab = (prop_images, prop.labels) if has_prop else (pool.images, pool.labels)
        else:
            extra_img, extra_lab = self.ctx.train.images, self.ctx.train.labels
        d_img.append(extra_img)
        d_mask.append(np.zeros(extra_img.shape[:3], np.uint8))
        d_lab.append(extra_lab)
        d_img, d_mask, d_lab = np.concatenate(d_img), np.concatenate(d_mask), np.concatenate(d_lab)
        n_pool = len(pool)
        rng = np.random.default_rng(self.seed + 11)
        v = self.params.variants
        k = self.params.candidates

        def variants(images, masks, labels, own):
            out = [cue_swap(images=images, masks=masks, labels=labels, donor_images=d_img, donor_masks=d_mask,
                            donor_labels=d_lab, rng=rng, candidates=k, exclude_same=own,
                            donors=self.params.donors).images for _ in range(v)]
            return np.stack(out, axis=1)  # [N, V, H, W, C]

        sel_var = variants(pool.images, pool.masks, pool.labels, np.arange(n_pool))
        self.pool = Pool(images=sel_var.reshape((-1,) + sel_var.shape[2:]),
                         labels=np.repeat(pool.labels, v), masks=np.repeat(pool.masks, v, axis=0),
                         grid=np.repeat(pool.grid, v, axis=0), origin=np.repeat(pool.origin, v))
        self.random_variants = None
        self.slot = np.full(len(prop.marked) if prop is not None else 0, -1, np.int64)
        if has_prop:
            self.random_variants = variants(prop_images, prop_masks, prop.labels, n_pool + np.arange(len(prop.positions)))
            self.slot[prop.positions] = np.arange(len(prop.positions))
        h, w, kk = self.ctx.grid
        self.lam = self.params.lam_scale * thesis_pas_lambda(h=h, w=w, k=kk)
        if self.params.shrink < 1.0 or self.params.perturb > 0.0:

            shrink_and_perturb(self.clf.model, shrink=self.params.shrink, noise=self.params.perturb, seed=self.seed + 13)

    def describe(self) -> dict:
        out = super().describe()
        if getattr(self, "prop", None) is not None:
            out["propagated"] = self.prop.describe()
        return out

    def sample_batch(self, rng: np.random.Generator) -> dict:
        """A batch whose random images that carry a propagated mask are swapped (with
        ``random_share``) for one of their precomputed variants. With ``data.stream`` a
        streamed image outside the propagation's bank is replaced by a variant of a bank
        image drawn at random (its label and mask come along), so the swapped share of
        the batch is the same while only the bank is held in memory."""
        if self.ctx.streaming:
            batch = super().sample_batch(rng)
            positions = np.asarray([self.ctx.dataset.locate(i)[1] for i in self.streamed_indices]
                                   if self.random_variants is not None else [], np.int64)
        else:
            positions, sel = self.sample_positions(rng)
            batch = self.assemble(positions, sel)
        rows, slots, pick = self.choose_swaps(positions, rng)
        return self.apply_swaps(batch, rows, slots, self.random_variants[slots, pick])

    def apply_swaps(self, batch: dict, rows, slots, images) -> dict:
        """``batch`` with rows ``rows`` replaced by ``images`` (the swapped variants of the
        propagated images ``slots``, or their cached features), their labels and masks."""
        if len(rows):
            batch["images"][rows] = np.asarray(images, np.float32)
            batch["labels"][rows] = self.prop.labels[slots]
            batch["masks"][rows] = self.prop.grid[slots]
        return batch

    def choose_swaps(self, positions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``(rows, slots, pick)``: the batch rows (of the random images at training
        ``positions``) that are swapped, for ``random_variants[slots, pick]``; empty when
        nothing is."""
        none = np.zeros(0, np.int64)
        if self.random_variants is None or self.params.random_share <= 0:
            return none, none, none
        marked = self.prop.marked[positions]
        swap = marked & (rng.random(len(positions)) < self.params.random_share)
        if not swap.any():
            return none, none, none
        rows = np.flatnonzero(swap)
        slots = self.slot[positions[rows]]
        outside = slots < 0  # only with data.stream: a marked image outside the bank
        if outside.any():
            slots[outside] = rng.integers(0, len(self.random_variants), size=int(outside.sum()))
        pick = rng.integers(0, self.random_variants.shape[1], size=len(rows))
        return rows, slots, pick

    def loss(self, clf, batch):
        acts, logits, ce = ce_and_forward(clf, batch)
        penalty = self.params.penalty
        if penalty == "pas":
            total, pen = pas_loss(ce=ce, activations=acts, masks=batch["masks"], lam=self.lam, normalize="masked")
        elif penalty == "pasa":
            total, pen = pasa_objective(ce=ce, activations=acts, logits=logits, labels=batch["labels"],
                                        masks=batch["masks"], weight=self.params.pasa)
        else:
            total = tf.reduce_mean(ce)
            pen = tf.zeros_like(total)
        return total, {"ce": tf.reduce_mean(ce), "penalty": pen}
