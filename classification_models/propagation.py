"""Feedback propagation: from a few masked images to the rest of the training set.

The expert masks a handful of images. What the model sees inside those masks is
written in its last-conv activations: each cell of the activation grid is a K-vector,
and the cells under the masks look alike (the same cue) and unlike the rest. Two
readings of that:

* ``CellClassifier``: a logistic regression on the cells' activation vectors
  (``log1p``), masked cells against the unmasked cells of the same images; applied to
  every cell of every other image, it marks where the same thing appears. Those cells
  become propagated masks, which extend swaps and penalties to many images. (Scoring
  cells by the sum of a few top filters, as the thesis's ch. 7 ranking suggests, marks
  far too much: a filter that fires on a corner patch also fires on strokes.)
* ``PixelSegmenter``: for masks that cover most of an image (a background: the mask is
  everything but the object), cell resolution is too coarse — an object's outline runs
  through many cells, and marking those cells swaps the object away. A random forest
  (scikit-learn) on per-pixel features (scikit-image's multiscale intensity, edge and
  texture features, plus the cell model's probability upsampled) learns the expert's
  pixels and marks other images pixel by pixel.
* ``rank_filters``: the filters whose activation mass lies most inside the masks (the
  thesis ranks the top filters inside a mask in ch. 7), for the filter-level penalty.

Shapes: activations ``[N, h, w, K]`` (non-negative, after the last conv's ReLU), grid
masks ``[N, h, w]`` in [0, 1].
"""
from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
from skimage.feature import multiscale_basic_features
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from common.errors import UserError

log = logging.getLogger(__name__)


class CannotPropagate(UserError):
    """The masks give the cell model nothing to learn from (no masked cell, or no unmasked one)."""


@dataclasses.dataclass(frozen=True)
class FilterRanking:
    """Filters ranked by the share of their activation mass inside the masks.

    Attributes:
        share: float ``[K]``: Σ M·A_k / Σ A_k over the masked images (0 for dead filters).
        chosen: int ``[F]``: the propagation filters, strongest share first.
        reference: float: mean over the masked images of the maximum of the chosen
            filters' summed activation inside the mask (the scale of "firing").
    """

    share: np.ndarray
    chosen: np.ndarray
    reference: float


def rank_filters(*, activations, grid_masks, top: int = 8, min_share: float = 0.5,
                 min_mass: float = 0.01) -> FilterRanking:
    """Chooses the filters that fire mostly inside the masks.

    Args:
        activations: ``[S, h, w, K]`` of the masked images.
        grid_masks: ``[S, h, w]`` their masks on the activation grid.
        top: at most this many filters.
        min_share: a filter is chosen only if at least this share of its mass is masked.
        min_mass: filters whose total mass is below this fraction of the mean filter's
            are ignored (dead or nearly dead filters have meaningless shares).

    Returns:
        ``FilterRanking`` (``chosen`` may be empty when no filter qualifies).

    Raises:
        UserError for an empty mask set, a filter count larger than the layer, or
        masks that do not match the activations.
    """
    a = np.maximum(np.asarray(activations, np.float64), 0.0)
    m = np.asarray(grid_masks, np.float64)
    if a.ndim != 4 or m.shape != a.shape[:3]:
        raise UserError(f"propagation: activations {a.shape} and grid masks {m.shape} do not match ([S,h,w,K] and [S,h,w])")
    if not len(a) or not (m > 0).any():
        raise UserError("propagation needs at least one masked image with a non-empty mask; the selection has none")
    k = a.shape[-1]
    if not 1 <= top <= k:
        raise UserError(f"propagation: filters (top) must be in 1..{k} (the layer has {k} filters), got {top}")
    mass = a.sum(axis=(0, 1, 2))
    inside = (a * m[..., None]).sum(axis=(0, 1, 2))
    alive = mass > min_mass * max(mass.mean(), 1e-12)
    share = np.where(alive, inside / np.maximum(mass, 1e-12), 0.0)
    order = np.argsort(-share, kind="stable")
    chosen = np.asarray([f for f in order[:top] if share[f] >= min_share], np.int64)
    ref = 0.0
    if len(chosen):
        fired = a[..., chosen].sum(-1) * (m > 0)
        ref = float(fired.reshape(len(a), -1).max(axis=1)[(m > 0).reshape(len(a), -1).any(axis=1)].mean())
    return FilterRanking(share=share, chosen=chosen, reference=ref)


def propagate_grid(*, activations, ranking: FilterRanking, threshold: float = 0.5) -> np.ndarray:
    """Cells where the chosen filters fire: ``Σ_{k∈chosen} A_k > threshold · reference``.

    Args:
        activations: ``[N, h, w, K]``.
        ranking: from ``rank_filters``.
        threshold: share of the reference level that counts as firing.

    Returns:
        bool ``[N, h, w]`` (all False when no filter was chosen).
    """
    a = np.asarray(activations, np.float32)
    if not len(ranking.chosen) or ranking.reference <= 0:
        return np.zeros(a.shape[:3], bool)
    fired = a[..., ranking.chosen].sum(-1)
    return fired > threshold * ranking.reference


#: ``position_features``: Gaussian bumps on a ``POSITION_GRID``² grid of centres over the image,
#: ``POSITION_SIGMA`` of its side wide
POSITION_GRID, POSITION_SIGMA = 4, 0.18


def position_features(grid_hw) -> np.ndarray:
    """``[h, w, POSITION_GRID²]`` where each cell of an ``h × w`` grid lies in the image:
    Gaussian bumps centred on a regular grid of points from corner to corner. With them the
    cell model can learn that a cue sits at a fixed place (a stamp, a ruler along an edge, a
    corner patch) even where the backbone's features of the cue look like parts of the
    object; a cue found anywhere leaves them weightless."""
    h, w = int(grid_hw[0]), int(grid_hw[1])
    yy, xx = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    centres = np.linspace(0.0, 1.0, POSITION_GRID)
    return np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * POSITION_SIGMA ** 2))
                     for cy in centres for cx in centres], -1)


class CellClassifier:
    """Logistic regression (scikit-learn) telling masked cells from unmasked ones.

    Args:
        activations: ``[S, h, w, K]`` of the masked images.
        grid_masks: ``[S, h, w]``; a cell counts as masked when > 0.5.
        c: inverse regularisation strength.
        seed: the solver's seed.
        position: also give the model where each cell lies (``position_features``).

    Raises:
        UserError when no cell is masked or every cell is.
    """

    def __init__(self, *, activations, grid_masks, c: float = 1.0, seed: int = 0, position: bool = False):
        a = np.asarray(activations, np.float64)
        m = np.asarray(grid_masks, np.float64)
        if a.ndim != 4 or m.shape != a.shape[:3]:
            raise UserError(f"propagation: activations {a.shape} and grid masks {m.shape} do not match ([S,h,w,K] and [S,h,w])")
        y = (m.reshape(-1) > 0.5).astype(int)
        if not y.any():
            raise CannotPropagate(f"propagation needs at least one masked image with a non-empty mask; none of the "
                                  f"{len(m)} masked image(s) has one")
        if y.all():
            raise CannotPropagate(f"propagation needs unmasked cells to contrast with; every cell of the {len(m)} masked "
                                  "image(s) is masked (all-255 masks?)")
        self.model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
        values = np.log1p(np.maximum(a, 0.0))
        #: position features on the scale of a strong activation (fixed at fit); None: none
        self.position_scale = (float(np.percentile(values, 95)) or 1.0) if position else None
        self.model.fit(self._features(values), y)

    def _features(self, values: np.ndarray) -> np.ndarray:
        """``[N·h·w, F]`` rows of the cells' ``log1p`` activations ``values`` ``[N, h, w, K]``
        (and their position features)."""
        if self.position_scale is not None:
            pos = position_features(values.shape[1:3]) * self.position_scale
            values = np.concatenate([values, np.broadcast_to(pos, values.shape[:3] + pos.shape[-1:])], -1)
        return values.reshape(-1, values.shape[-1])

    def probability(self, activations) -> np.ndarray:
        """``[N, h, w]`` probability that each cell shows what the masks cover."""
        a = np.asarray(activations, np.float64)
        return self.model.predict_proba(self._features(np.log1p(np.maximum(a, 0.0))))[:, 1].reshape(a.shape[:3])


class PixelSegmenter:
    """Random forest telling the expert's masked pixels from the unmasked ones.

    Features per pixel: ``skimage.feature.multiscale_basic_features`` of the image
    (intensity, edges, texture at scales 1-4 px) and the cell model's probability,
    upsampled bilinearly (what the model sees around the pixel).

    Args:
        images: uint8 ``[S, H, W, C]`` the masked images.
        masks: ``[S, H, W]`` nonzero = masked.
        cell_probability: ``[S, h, w]`` the cell model's probability on those images.
        max_pixels: at most this many training pixels (a random sample).
        max_side: larger images are segmented at this size (longest side) and the
            probability upsampled, bounding the cost for 224-px images.
        seed: the sample's and the forest's seed.

    Raises:
        UserError when no pixel is masked or every pixel is.
    """

    def __init__(self, *, images, masks, cell_probability, max_pixels: int = 60_000, max_side: int = 96,
                 seed: int = 0):
        self.max_side = int(max_side)
        masks = np.asarray(masks) > 0
        size = self._work_size(masks.shape[1:3])
        if size != masks.shape[1:3]:
            masks = np.stack([cv2.resize(m.astype(np.uint8), size[::-1], interpolation=cv2.INTER_NEAREST) > 0
                              for m in masks])
        y = masks.reshape(-1)
        if not y.any():
            raise UserError("propagation needs at least one masked image with a non-empty mask; the selection has none")
        if y.all():
            raise UserError("propagation needs unmasked pixels to contrast with; every pixel of the masked images is masked")
        x = self.features(images, cell_probability)
        x = x.reshape(-1, x.shape[-1])
        rng = np.random.default_rng(seed)
        take = rng.choice(len(x), size=min(len(x), max_pixels), replace=False)
        self.model = RandomForestClassifier(n_estimators=40, max_depth=14, min_samples_leaf=5,
                                            class_weight="balanced_subsample", random_state=seed, n_jobs=2)
        self.model.fit(x[take], y[take])

    def _work_size(self, hw) -> tuple[int, int]:
        """Images larger than ``max_side`` are segmented at that size (the forest's cost
        grows with the pixel count) and the probability upsampled."""
        h, w = int(hw[0]), int(hw[1])
        scale = min(1.0, self.max_side / max(h, w))
        return (max(1, round(h * scale)), max(1, round(w * scale)))

    def features(self, images, cell_probability) -> np.ndarray:
        """``[N, h', w', F]`` float32 pixel features at the working size."""
        images = np.asarray(images)
        h, w = self._work_size(images.shape[1:3])
        out = []
        for im, cp in zip(images, np.asarray(cell_probability, np.float32)):
            if im.shape[:2] != (h, w):
                im = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
            f = multiscale_basic_features(im.astype(np.float32) / 255.0, channel_axis=-1, sigma_min=1, sigma_max=4,
                                          num_sigma=3)
            up = cv2.resize(cp, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
            out.append(np.concatenate([f, up], -1).astype(np.float32))
        return np.stack(out)

    def probability(self, images, cell_probability) -> np.ndarray:
        """``[N, H, W]`` probability that each pixel shows what the masks cover."""
        images = np.asarray(images)
        x = self.features(images, cell_probability)
        prob = self.model.predict_proba(x.reshape(-1, x.shape[-1]))[:, 1].reshape(x.shape[:3]).astype(np.float32)
        h, w = images.shape[1:3]
        if prob.shape[1:3] != (h, w):
            prob = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in prob])
        return prob


def leave_one_out_probability(*, activations, grid_masks, c: float = 1.0, in_sample=None,
                              position: bool = False) -> np.ndarray:
    """``[S, h, w]`` each masked image's cell probabilities from a ``CellClassifier`` fit
    on the other ``S - 1`` images (the in-sample probabilities — ``in_sample`` when the
    caller has them, else from a model fit on all — for an image whose fold cannot be
    fit, and with a single image). A threshold calibrated on these holds on images the
    model has not seen; the in-sample ones are overconfident when the masks are few and
    thin."""
    a = np.asarray(activations)
    m = np.asarray(grid_masks)
    out = np.array(in_sample if in_sample is not None
                   else CellClassifier(activations=a, grid_masks=m, c=c, position=position).probability(a), np.float64)
    in_sample_only = 1 if len(a) == 1 else 0
    for i in range(len(a) if len(a) > 1 else 0):
        rest = np.arange(len(a)) != i
        try:
            out[i] = CellClassifier(activations=a[rest], grid_masks=m[rest], c=c,
                                        position=position).probability(a[i:i + 1])[0]
        except CannotPropagate:  # the other images have no masked (or no unmasked) cell
            in_sample_only += 1
    if in_sample_only:
        log.warning("propagation: %d of %d masked image(s) cannot be held out (too few masked images with both masked "
                    "and unmasked cells), so the threshold is calibrated on probabilities the cell model was fit on, "
                    "which marks more than it should; mask at least 3 images for a held-out calibration",
                    in_sample_only, len(a))
    return out


def calibrate_threshold(*, probability, grid_masks, start: float = 0.8, min_recall: float = 0.95,
                        step: float = 0.05, floor: float = 0.05) -> float:
    """The highest threshold, from ``start`` down in ``step``s to ``floor``, at which the
    cell probabilities mark at least ``min_recall`` of the masked cells of the expert's
    own images (``floor`` when none does; ``start`` when ``min_recall`` is 0).

    A cue that fills most of the image (a background) is marked with a lower confidence
    near the object than in the open; a fixed threshold leaves those cells unmarked, and
    the cue survives in them. Recall on the expert's images is the measurable proxy.

    Args:
        probability: ``[S, h, w]`` cell probabilities on the masked images.
        grid_masks: ``[S, h, w]``; a cell counts as masked when > 0.5.
        start, step, floor: the thresholds tried.
        min_recall: in [0, 1].

    Returns:
        The threshold.
    """
    p = np.asarray(probability, np.float64)
    m = np.asarray(grid_masks) > 0.5
    if min_recall <= 0 or not m.any():
        return float(start)
    inside = p[m]
    t = float(start)
    while t > floor + 1e-9:
        if (inside > t).mean() >= min_recall:
            return t
        t = round(t - step, 10)
    return float(floor)


def grid_to_image(grid_masks, *, size: tuple[int, int]) -> np.ndarray:
    """Grid masks ``[N, h, w]`` -> uint8 image masks ``[N, H, W]`` (255 = irrelevant),
    each cell covering its block of pixels (nearest neighbour; cells need not divide H, W)."""
    g = np.asarray(grid_masks) > 0
    n, gh, gw = g.shape
    h, w = int(size[0]), int(size[1])
    rows = np.minimum((np.arange(h) * gh) // h, gh - 1)
    cols = np.minimum((np.arange(w) * gw) // w, gw - 1)
    return np.where(g[:, rows][:, :, cols], 255, 0).astype(np.uint8)


class PixelQuality:
    """Pixel precision and recall of predicted masks against ground-truth masks, pooled
    over images and accumulated image by image (a split read in chunks)."""

    def __init__(self):
        self.tp = self.predicted = self.truth = self.n_images = self.n_marked = 0

    def add(self, predicted, truth) -> None:
        """One image's ``[H, W]`` masks (nonzero = masked)."""
        p, t = np.asarray(predicted) > 0, np.asarray(truth) > 0
        self.tp += int((p & t).sum())
        self.predicted += int(p.sum())
        self.truth += int(t.sum())
        self.n_images += 1
        self.n_marked += int(p.any())

    def result(self) -> dict:
        """``{"precision", "recall", "n_images", "n_marked"}`` (None for a ratio without a denominator)."""
        return {"precision": self.tp / self.predicted if self.predicted else None,
                "recall": self.tp / self.truth if self.truth else None,
                "n_images": self.n_images, "n_marked": self.n_marked}


def precision_recall(*, predicted, truth) -> dict:
    """Pixel precision and recall of predicted masks ``[N, H, W]`` against ground-truth
    masks (pooled over images) -> ``{"precision", "recall", "n_images", "n_marked"}``."""
    quality = PixelQuality()
    for p, t in zip(predicted, truth):
        quality.add(p, t)
    return quality.result()