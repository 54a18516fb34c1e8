"""Counterfactual cue swaps: the irrelevant region of an image replaced by the same
region of another image, so that the cue no longer predicts the label.

Used three ways: the behavioural reliance metric (how often a prediction changes when
only the cue region changes: donors of *another* class), counterfactual training (the
swapped image keeps its own label) and model selection on a cue-swapped validation set.

Which donors: ``donors="other"`` takes the region from an image of another class, the
definition of a flip for the reliance metric. For training and for model selection,
``donors="any"`` draws the donor from every class (itself excluded): a cue copied only
from *other* classes still carries information — "this background is class B's, so the
image is not B" — and a model that learns that anti-cue scores high on other-class
swaps while failing on the original images. With donors of any class the swapped cue
is independent of the label, like the test split of a cue-randomised benchmark.

The rule is generic (no knowledge of the cue family):

1. the donor is an image of another class whose mask overlaps the receiving image's
   mask most (IoU, best of ``candidates`` random other-class images), so a cue at a
   fixed place is swapped for the donor's cue at the same place, and a corner patch
   finds a donor with its patch in the same corner;
2. only pixels irrelevant in **both** images are pasted (``mask_i ∧ mask_d``): a
   background mask never brings fragments of the donor's object along;
3. the rest of the receiving mask (``mask_i ∧ ¬mask_d``) is filled by OpenCV inpainting
   of the composite, so none of the receiving image's own cue survives.

Pixels outside ``mask_i`` never change.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from common.errors import UserError


@dataclasses.dataclass
class SwapResult:
    """Swapped images and where they came from.

    Attributes:
        images: uint8 ``[N, H, W, C]``.
        donors: int ``[N]`` position of each image's donor in the donor arrays.
        iou: float ``[N]`` mask IoU between each image and its donor.
    """

    images: np.ndarray
    donors: np.ndarray
    iou: np.ndarray


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one mask ``a [H,W]`` with each of ``b [M,H,W]`` (nonzero = set) -> ``[M]``."""
    a = np.asarray(a) > 0
    b = np.asarray(b) > 0
    inter = (b & a[None]).sum(axis=(1, 2))
    union = (b | a[None]).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    if not hole.any():
        return image
    img = image if image.shape[-1] == 3 else image[..., 0]
    out = cv2.inpaint(np.ascontiguousarray(img), hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return out.reshape(image.shape)


def cue_swap(*, images, masks, labels, donor_images, donor_masks, donor_labels, rng: np.random.Generator,
             candidates: int = 8, exclude_same: np.ndarray | None = None, donors: str = "other") -> SwapResult:
    """Replaces each image's masked region by the same region of a donor image.

    Args:
        images: uint8 ``[N, H, W, C]``; masks: ``[N, H, W]`` nonzero = irrelevant (cue);
        labels: int ``[N]``.
        donor_images, donor_masks, donor_labels: the donor pool (may be the same arrays).
        rng: draws the candidate donors.
        candidates: donors drawn per image; the one with the largest mask IoU wins.
        exclude_same: optional int ``[N]``: donor position each image must not use (itself,
            when the donor pool is the image set).
        donors: ``"other"``: donors of another class only; ``"any"``: donors of every class
            (the swapped cue independent of the label; see the module docstring).

    Returns:
        ``SwapResult``. An image with an empty mask is returned unchanged (its donor is -1).
        When no eligible donor has a masked region, a random eligible donor gives the
        pixels of the receiving mask as they are (IoU reported as 0).

    Raises:
        UserError when the donor pool has no image of another class (a swap needs two
        classes, whichever ``donors``), or ``donors`` is unknown.
    """
    images, masks, labels, d_img, d_mask, d_lab = _swap_inputs(images, masks, labels, donor_images, donor_masks,
                                                               donor_labels)
    if candidates < 1:
        raise UserError(f"cue swap: candidates must be >= 1, got {candidates}")
    if donors not in ("other", "any"):
        raise UserError(f"cue swap: donors must be 'other' or 'any', got {donors!r}")
    usable = d_mask.any(axis=(1, 2))
    donor_classes = np.unique(d_lab)
    out = images.copy()
    picked = np.full(len(images), -1, np.int64)
    ious = np.zeros(len(images), np.float64)
    for i in range(len(images)):
        if not masks[i].any():
            continue
        if not (donor_classes != labels[i]).any():
            raise UserError(f"cue swap: no donor of a class other than {int(labels[i])} (donor classes: "
                            f"{sorted(set(d_lab.tolist()))}); a swap needs at least two classes")
        other = d_lab != labels[i] if donors == "other" else np.ones(len(d_lab), bool)
        if exclude_same is not None and 0 <= exclude_same[i] < len(other):
            other[exclude_same[i]] = False
        pool = np.flatnonzero(other & usable)
        if not len(pool):
            # no eligible donor with a known cue region: the same region of any eligible
            # image (right for a cue at a fixed place; elsewhere it erases the cue)
            pool = np.flatnonzero(other)
            j = int(rng.choice(pool))
            out[i][masks[i]] = d_img[j][masks[i]]
            picked[i] = j
            continue
        cand = rng.choice(pool, size=min(candidates, len(pool)), replace=False)
        iou = mask_iou(masks[i], d_mask[cand])
        j = int(cand[int(np.argmax(iou))])
        paste = masks[i] & d_mask[j]
        img = out[i]
        img[paste] = d_img[j][paste]
        hole = masks[i] & ~d_mask[j]
        img[hole] = _inpaint(img, hole)[hole]
        picked[i], ious[i] = j, float(iou.max())
    return SwapResult(images=out, donors=picked, iou=ious)


@dataclasses.dataclass
class CompleteSwapResult:
    """Images with another class's complete cue in place of their own.

    Attributes:
        images: uint8 ``[N, H, W, C]``.
        donors: int ``[N]`` position of each image's donor (-1: no cue region, unchanged).
        cues: int ``[N]`` the donor's label: the class the pasted cue stands for (-1 unchanged).
        complete: bool ``[N]``: the donor's whole cue region covers the image's own, so the
            image shows the donor's complete cue and nothing of its own; False: no donor
            fitted and the image got ``cue_swap``'s partial swap (the rest inpainted).
    """

    images: np.ndarray
    donors: np.ndarray
    cues: np.ndarray
    complete: np.ndarray


def complete_cue_swap(*, images, masks, labels, donor_images, donor_masks, donor_labels, rng: np.random.Generator,
                      exclude_same: np.ndarray | None = None, max_spill: float = 1.0,
                      donors: str = "other") -> CompleteSwapResult:
    """Puts a *complete* cue of an image of another class in place of each image's cue.

    The donor is an image of another class whose cue region ``D`` contains the receiving
    image's ``M`` (``M ⊆ D``) and spills least beyond it (``|D \\ M| ≤ max_spill · |M|``,
    ties broken at random); the whole of ``D`` is pasted, so the result carries the donor's
    entire cue — a contradicting one, as on the test split of a cue-randomised set — and
    none of its own, with no erased or inpainted region. Where no donor fits, the image
    gets ``cue_swap``'s partial swap (donors of other classes) and ``complete`` says so.

    Args:
        images: uint8 ``[N, H, W, C]``; masks: ``[N, H, W]`` nonzero = cue; labels: int ``[N]``.
        donor_images, donor_masks, donor_labels: the donor pool (may be the same arrays).
        rng: breaks ties and draws the partial swaps' donors.
        exclude_same: optional int ``[N]``: the donor position each image must not use.
        max_spill: the largest share of ``|M|`` that a donor's region may add.
        donors: ``"other"`` (a contradicting cue, the default) or ``"any"`` class (the
            pasted cue independent of the label: what a probe of the features needs).

    Returns:
        ``CompleteSwapResult``.

    Raises:
        UserError as ``cue_swap`` (shapes, no donor of another class).
    """
    any_class = donors == "any"
    images, m, labels, d_img, d_m, d_lab = _swap_inputs(images, masks, labels, donor_images, donor_masks,
                                                        donor_labels)
    n = len(images)
    flat, d_flat = m.reshape(n, -1).astype(np.float32), d_m.reshape(len(d_m), -1).astype(np.float32)
    area, d_area = flat.sum(1), d_flat.sum(1)
    inter = flat @ d_flat.T  # [N, P] pixels of M inside D
    out = images.copy()
    donors = np.full(n, -1, np.int64)
    complete = np.zeros(n, bool)
    for i in range(n):
        if area[i] == 0:
            continue
        spill = d_area - inter[i]
        fits = (inter[i] >= area[i]) & ((d_lab != labels[i]) | any_class) & (spill <= max_spill * area[i])
        if exclude_same is not None and 0 <= exclude_same[i] < len(fits):
            fits[exclude_same[i]] = False
        if fits.any():
            best = np.flatnonzero(fits & (spill == spill[fits].min()))
            j = int(rng.choice(best))
            out[i][d_m[j]] = d_img[j][d_m[j]]
            donors[i], complete[i] = j, True
    partial = np.flatnonzero((area > 0) & ~complete)
    if len(partial):
        res = cue_swap(images=images[partial], masks=m[partial], labels=labels[partial], donor_images=d_img,
                       donor_masks=d_m, donor_labels=d_lab, rng=rng, donors="any" if any_class else "other",
                       exclude_same=None if exclude_same is None else np.asarray(exclude_same)[partial])
        out[partial], donors[partial] = res.images, res.donors
    cues = np.where(donors >= 0, d_lab[np.maximum(donors, 0)], -1).astype(np.int64)
    return CompleteSwapResult(images=out, donors=donors, cues=cues, complete=complete)


def _swap_inputs(images, masks, labels, donor_images, donor_masks, donor_labels) -> tuple[np.ndarray, ...]:
    """The arrays of a swap (masks as booleans), their shapes checked against each other."""
    images, masks, labels = np.asarray(images), np.asarray(masks) > 0, np.asarray(labels)
    d_img, d_mask, d_lab = np.asarray(donor_images), np.asarray(donor_masks) > 0, np.asarray(donor_labels)
    if images.shape[:3] != masks.shape or d_img.shape[1:] != images.shape[1:] or d_mask.shape != d_img.shape[:3]:
        raise UserError(f"cue swap: images {images.shape}, masks {masks.shape}, donors {d_img.shape}, "
                        f"donor masks {d_mask.shape} do not match")
    return images, masks, labels, d_img, d_mask, d_lab
