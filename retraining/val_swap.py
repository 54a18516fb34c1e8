"""The cue-swapped validation copy: model selection that a wrong-masks control cannot fool.

The user's validation split usually carries the cue like the training split. The run's
own feedback — the expert's masks, propagated to every image by the base model
(``retraining.propagate``) — marks the cue on each validation image; each marked image
then gets the **complete** cue of an image of another class in place of its own
(``image_generator.swap.complete_cue_swap``), as on the test split of a cue-randomised
set: a model that reads the cue is scored on a contradicting cue, not on an erased or
inpainted region. The marks are widened by half an activation-grid cell first
(``margin_px``): propagated cells rarely align with a cue's edges, and a cue that
survives in part next to the donor's still predicts the label.

The copy is built **once per run** and used unchanged for every method, controls
included: a copy built from a control's own wrong masks would score the control on its
own terms (seen: the random-masks control had the highest cue-swapped accuracy of all
methods while being the worst on test).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math

import numpy as np

from classification_models.mask_ops import dilate
from classification_models.propagation import CannotPropagate
from image_generator.swap import complete_cue_swap

log = logging.getLogger(__name__)

#: with ``data.stream`` the cue-swapped validation copy is made of at most this many
#: validation images (a seeded sample)
STREAM_VAL_SWAP = 1000

#: a warning when fewer of the marked validation images than this share found a donor
#: whose complete cue covers their own
COMPLETE_WARNING = 0.5


@dataclasses.dataclass
class ValSwapCopy:
    """The cue-swapped validation copy of a run.

    Attributes:
        images: uint8 ``[N, H, W, C]`` the marked validation images with another class's cue.
        labels: int64 ``[N]`` their true classes.
        cues: int64 ``[N]`` the class each pasted cue stands for (the donor's; never the label).
        complete: bool ``[N]`` the donor's whole cue covers the image's own (else a partial swap).
        n_split: images of the split the copy was made from.
        margin_px: how far the propagated marks were widened.
    """

    images: np.ndarray
    labels: np.ndarray
    cues: np.ndarray
    complete: np.ndarray
    n_split: int
    margin_px: int

    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def share_marked(self) -> float:
        return float(self.n / max(self.n_split, 1))

    @property
    def n_complete(self) -> int:
        return int(self.complete.sum())

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the images and labels: the same copy, the same digest."""
        h = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()[:16]

    def note(self) -> str | None:
        """What ``run.json`` says when some marked images found no complete donor cue."""
        missing = self.n - self.n_complete
        if not missing:
            return None
        return (f"{missing} of {self.n} marked validation images found no image of another class whose cue region "
                f"covers theirs; they carry a partial swap (the donor's cue where both are marked, the rest "
                f"inpainted)")


def default_margin(image_hw, grid_hw) -> int:
    """Half an activation-grid cell in pixels (rounded up): how far a cue can reach past
    the cells the propagation marked."""
    return int(math.ceil(max(image_hw[0] / grid_hw[0], image_hw[1] / grid_hw[1]) / 2))


def cue_swapped_copy(clf, data, *, split: str = "val", seed: int = 0, batch_size: int = 256,
                     margin_px: int | None = None, donors: str = "other") -> ValSwapCopy | None:
    """The run's cue-swapped copy of ``split`` (see the module docstring).

    Args:
        clf: the base model (its propagator marks the cue on the split's images).
        data: ``retraining.data.RetrainData`` (the expert's selection, the data set).
        split: the split to copy.
        seed: donor choice (the same seed, the same copy).
        margin_px: widening of the marks (default ``default_margin``: half a grid cell).
        donors: ``other`` classes (the run's copy: contradicting cues) or ``any`` class (a
            cue independent of the label, for the fast path's probe of the features).

    Returns:
        The copy, or None when the split is missing or fewer than two classes have a
        marked image. With ``data.stream`` a seeded sample of at most ``STREAM_VAL_SWAP``
        images of the split is read from its records.
    """
    if split not in data.dataset.available_splits():
        return None
    try:
        prop = data.propagated(clf)
    except CannotPropagate as exc:
        raise CannotPropagate(f"{data.selected.source}: {exc}; the cue-swapped {split} copy (\"counterfactual_val\": "
                              "true, the default) needs the masks propagated: leave part of each masked image "
                              "unmasked, or set "
                              "\"counterfactual_val\": false") from None
    if data.streaming:
        indices, _ = data.dataset.index_table(split)
        take = np.sort(np.random.default_rng(seed).choice(len(indices), size=min(len(indices), STREAM_VAL_SWAP),
                                                          replace=False))
        images, labels = data.dataset.read_rows([str(indices[i]) for i in take])
    else:
        arr = data.dataset.arrays(split)
        images, labels = arr.images, arr.labels
    if not len(images):
        return None
    marks = prop.propagator.masks(clf, images, batch_size=batch_size)
    keep = np.flatnonzero(marks.any(axis=(1, 2)))
    if len(keep) == 0 or len(set(labels[keep].tolist())) < 2:
        return None
    margin = default_margin(images.shape[1:3], data.grid[:2]) if margin_px is None else int(margin_px)
    masks = (dilate(marks[keep], pixels=margin) > 0).astype(np.uint8) * 255
    res = complete_cue_swap(images=images[keep], masks=masks, labels=labels[keep], donor_images=images[keep],
                            donor_masks=masks, donor_labels=labels[keep], rng=np.random.default_rng(seed),
                            exclude_same=np.arange(len(keep)), donors=donors)
    copy = ValSwapCopy(images=res.images, labels=labels[keep].astype(np.int64), cues=res.cues,
                       complete=res.complete, n_split=int(len(images)), margin_px=margin)
    if copy.n_complete < COMPLETE_WARNING * copy.n:
        log.warning("the cue-swapped validation copy: only %d of %d marked images found another class's complete "
                    "cue covering theirs (the rest carry a partial swap); its accuracy is a weaker guide",
                    copy.n_complete, copy.n)
    return copy
