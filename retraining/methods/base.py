"""The method contract shared by every retraining method (one module per method).

A method is constructed from its config params (read into its ``Params`` dataclass by
``common.config.from_dict``: an unknown key, a wrong type or a value out of range fails
naming the key), then ``setup`` gets the
classifier being retrained (a fresh copy of the base model) and the run's data. The
shared loop (``retraining.loop``) then calls ``sample_batch(rng)`` and a
compiled ``Classifier.make_train_step(method.loss, optimizer)`` each iteration.

The *pool* is what fills the ``selected`` slots of a batch: the selected images with
their masks (after the optional feedback-quality ``mask_variant``), or, for the
replacement methods, their replaced variants.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np

from classification_models.classifier import sparse_ce
from classification_models.mask_ops import MASK_VARIANTS, mask_variant
from common.config import from_dict, to_dict
from common.errors import UserError
from common.registry import Registry
from retraining.data import RetrainData, compose_indices


@dataclasses.dataclass
class Pool:
    """Items that fill the selected slots.

    Attributes:
        images: uint8 ``[P, H, W, C]``; labels: int64 ``[P]``;
        masks: uint8 ``[P, H, W]`` (image resolution, 255 = irrelevant);
        grid: float32 ``[P, h, w]`` (activation grid);
        origin: int ``[P]`` position of the selected item each pool item comes from;
        extra: per-item arrays methods add (e.g. ``feature_scale [P, K]``).
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    grid: np.ndarray
    origin: np.ndarray
    extra: dict = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.labels))


#: name -> method class; each method module registers its classes with ``@REGISTRY.register``
#: (``retraining.methods`` imports them all)
REGISTRY = Registry("method")


@dataclasses.dataclass(frozen=True)
class NoParams:
    """A method without parameters."""


@dataclasses.dataclass(frozen=True)
class MaskParams:
    """What every mask method accepts: ``mask_variant``, the feedback-quality control
    (``none``: the expert's masks; ``inverted``, ``random``, ``incomplete``: wrong or
    damaged masks, ``classification_models.mask_ops.mask_variant``)."""

    #: feedback-quality control: the expert's masks (`none`) or wrong/damaged ones
    mask_variant: str = dataclasses.field(default="none", metadata={"choices": MASK_VARIANTS})


class Method(abc.ABC):
    """Base class. Subclasses set ``name``, ``letter``, ``Params`` and implement ``loss``.

    Class attributes:
        name: registry name. letter: thesis letter ('' for baselines beyond the thesis).
        needs_selection: a run with an empty selection fails for this method.
        uses_masks: the method reads masks (the ``mask_variant`` control applies).
        needs_full_masks: the batch carries image-resolution masks (``masks_full``).
        Params: the parameters' dataclass (``NoParams``; mask methods extend ``MaskParams``).
        whole_train: what the method does with the whole training split in memory (it
            then refuses ``data.stream``), or None when random batches are all it reads.
    """

    name = "base"
    letter = ""
    description = ""
    needs_selection = True
    uses_masks = True
    needs_full_masks = False
    #: the parameters (a frozen dataclass; its fields' defaults and ``metadata`` limits)
    Params: type = MaskParams
    whole_train: str | None = None

    def __init__(self, params: dict | None = None, label: str | None = None):
        self.label = label or self.name
        self.params = self.resolve_params(params or {})
        self.ctx = None
        self.pool: Pool | None = None
        self.batch_random = 0
        self.batch_selected = 0
        self.with_replacement = False
        self._random = None
        #: the record indices of the last streamed batch's random images (``data.stream``)
        self.streamed_indices = np.zeros(0, str)

    # ----- parameters -------------------------------------------------------------
    @classmethod
    def resolve_params(cls, params: dict):
        """``params`` read into ``cls.Params`` by ``common.config.from_dict``: an unknown key,
        a wrong type or a value out of range fails naming the method and the key."""
        return from_dict(cls.Params, params, source=f"method '{cls.name}' params")

    def describe(self) -> dict:
        out = {"name": self.name, "letter": self.letter, "params": to_dict(self.params)}
        if getattr(self, "path", None):  # the fast or full path it took (retraining.fast)
            out["path"] = self.path
        return out

    def whole_train_need(self) -> str | None:
        """Why this method (with its params) needs the whole training split in memory, or
        None when it can run on streamed batches (``data.stream``)."""
        return self.whole_train

    def check_streaming(self) -> None:
        """Raises UserError (one line naming the method and ``data.stream``) when the
        method cannot run on streamed batches."""
        need = self.whole_train_need()
        if need:
            raise UserError(f"method '{self.label}' ({self.name}) cannot run with data.stream: true: it {need}; "
                            "set data.stream: false or leave the method out")

    # ----- setup ------------------------------------------------------------------
    def setup(self, *, clf, data: RetrainData, batch_random: int, batch_selected: int, seed: int,
              with_replacement: bool = False) -> None:
        """Binds the classifier and data, builds the pool, then calls ``prepare``.

        Raises:
            UserError: an empty selection for a method that needs one; an all-zero mask
                for a method that reads masks (naming the image); ``batch_selected``
                larger than the pool without ``with_replacement``.
        """
        if data.streaming:
            self.check_streaming()
        if self.needs_selection and len(data.selected) == 0:
            raise UserError(f"method '{self.label}' needs a selection with at least one masked image; "
                            f"{data.selected.source} is empty")
        sel = data.selected
        if self.uses_masks and len(sel):
            # an empty mask gives the mask terms nothing to act on (a 0/0 in some of them)
            empty = np.flatnonzero(~sel.masks.reshape(len(sel), -1).any(axis=1))
            if len(empty):
                raise UserError(f"method '{self.label}' reads masks, but the mask of selected image "
                                f"'{sel.indices[empty[0]]}' (item {int(empty[0])}) is empty (all zero)"
                                + (f"; {len(empty) - 1} more are empty" if len(empty) > 1 else ""))
        self.ctx = data
        self.clf = clf
        self.seed = int(seed)
        self.batch_random = int(batch_random)
        self.batch_selected = int(batch_selected)
        self.with_replacement = bool(with_replacement)
        masks = sel.masks
        if self.uses_masks and self.params.mask_variant != "none":
            masks = mask_variant(masks, variant=self.params.mask_variant, rng=np.random.default_rng(seed + 7))
        #: the selected images' masks this method learns from (the expert's, or a control's
        #: variant): propagation and the cue-swapped validation copy start from them
        self.feedback_masks = masks
        if self.uses_masks:
            data.grid_report()  # warns once when a cue is smaller than a feature-map cell
        self.pool = Pool(sel.images, sel.labels, masks, data.to_grid(masks), np.arange(len(sel)))
        self.prepare()
        if len(self.pool) and self.batch_selected > len(self.pool) and not self.with_replacement:
            raise UserError(f"method '{self.label}': batch.selected is {self.batch_selected} but there are only "
                            f"{len(self.pool)} images to draw them from ({len(sel)} selected masked images); lower "
                            "batch.selected or set batch.with_replacement: true")

    def prepare(self) -> None:
        """Per-method precomputation (pool variants, calibration, misclassified list)."""

    # ----- batches ----------------------------------------------------------------
    def batch_counts(self) -> tuple[int, int]:
        """``(random, selected)`` images per batch (selected slots become random ones when the pool is empty)."""
        n_sel = self.batch_selected if len(self.pool) else 0
        return self.batch_random + (self.batch_selected - n_sel), n_sel

    def sample_positions(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(train positions, pool positions)`` of one batch."""
        n_rand, n_sel = self.batch_counts()
        return compose_indices(rng, n_train=self.ctx.train_size(), n_random=n_rand,
                               pool_size=len(self.pool), n_selected=n_sel, with_replacement=self.with_replacement)

    def sample_batch(self, rng: np.random.Generator) -> dict:
        """One batch as NumPy arrays: ``images`` float32 ``[N,H,W,C]``, ``labels`` int64,
        ``masks`` float32 ``[N,h,w]`` (zeros for random images), ``selected`` float32 ``[N]``,
        plus ``masks_full`` ``[N,H,W]`` in {0,1} when ``needs_full_masks``.

        With ``data.stream`` the random images are the next batch of the method's own
        stream of the training split (seeded by the method's seed); ``rng`` draws the pool items.
        """
        if self.ctx.streaming:
            n_rand, n_sel = self.batch_counts()
            _, sel = compose_indices(rng, n_train=0, n_random=0, pool_size=len(self.pool), n_selected=n_sel,
                                     with_replacement=self.with_replacement)
            if self._random is None:
                self._random = self.ctx.random_batches(batch_size=max(n_rand, 1), seed=self.seed)
            if n_rand:
                self.streamed_indices, images, labels = next(self._random)
            else:
                self.streamed_indices, images, labels = np.zeros(0, str), self.pool.images[:0], self.pool.labels[:0]
            return self.assemble_images(images, labels, sel)
        tr, sel = self.sample_positions(rng)
        return self.assemble(tr, sel)

    def release(self) -> None:
        """Drops the method's training stream (its shuffle buffer) once its run is over."""
        self._random = None

    def assemble(self, train_pos: np.ndarray, pool_pos: np.ndarray) -> dict:
        """The batch of training positions ``train_pos`` and pool items ``pool_pos``."""
        train = self.ctx.train
        return self.assemble_images(train.images[train_pos], train.labels[train_pos], pool_pos)

    def assemble_images(self, images: np.ndarray, labels: np.ndarray, pool_pos: np.ndarray) -> dict:
        """The batch of random ``images`` uint8 ``[R,H,W,C]`` with ``labels`` and pool items ``pool_pos``."""
        images = np.concatenate([images, self.pool.images[pool_pos]]).astype(np.float32)
        return {"images": images, **self.batch_fields(labels, pool_pos)}

    def batch_fields(self, labels: np.ndarray, pool_pos: np.ndarray) -> dict:
        """Everything of the batch of random images with ``labels`` and pool items
        ``pool_pos`` but its images (the fast path puts cached features there)."""
        n_r, n_s = len(labels), len(pool_pos)
        gh, gw = self.ctx.grid[:2]
        batch = {
            "labels": np.concatenate([labels, self.pool.labels[pool_pos]]).astype(np.int64),
            "masks": np.concatenate([np.zeros((n_r, gh, gw), np.float32), self.pool.grid[pool_pos]]),
            "selected": np.concatenate([np.zeros(n_r, np.float32), np.ones(n_s, np.float32)]),
        }
        if self.needs_full_masks:
            h, w = self.pool.masks.shape[1:3]
            batch["masks_full"] = np.concatenate([np.zeros((n_r, h, w), np.float32),
                                                  (self.pool.masks[pool_pos] > 0).astype(np.float32)])
        for key, arr in self.pool.extra.items():
            default = np.ones((n_r,) + arr.shape[1:], arr.dtype)
            batch[key] = np.concatenate([default, arr[pool_pos]])
        return batch

    # ----- loss -------------------------------------------------------------------
    @abc.abstractmethod
    def loss(self, clf, batch) -> tuple[Any, dict]:
        """``(scalar loss, {"ce": ..., "penalty": ...})`` inside the training tape."""


def ce_and_forward(clf, batch, feature_scale=None):
    """Shared forward: ``(activations, logits, per-example CE [N])``."""
    acts, logits = clf.forward(batch["images"], training=True, feature_scale=feature_scale)
    return acts, logits, sparse_ce(batch["labels"], logits)
