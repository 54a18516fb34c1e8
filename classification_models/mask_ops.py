"""Masks on the activation grid and feedback-quality controls (pure NumPy).

An expert paints masks at image resolution (``uint8 [H, W]``, 255 = irrelevant); the
activation losses need them on the last-conv grid ``[h, w]``. The thesis resized them
(§5.1.2, Table 5.1). How matters: a distractor not aligned with the grid
covers part of several cells, and with an area threshold above 0.5 its border cells
stay unmasked, so the shortcut leaks into them. Three documented modes:

* ``"area"``  — exact area average of each cell, then ``cell = fraction > threshold``
  (``threshold=0.5`` ≈ the thesis resize; ``0`` = any overlap);
* ``"soft"``  — the area fraction itself in [0, 1] (partial cells get partial weight);
* ``"dilate"`` — the image mask is first dilated by ``dilate_px`` pixels (default: one
  grid stride, ``ceil(H/h)``, i.e. about a last-conv cell's neighbourhood), then any
  overlap marks the cell. Covers leaking neighbours at the price of a larger area.

``DEFAULT_RESIZE`` is what the retraining uses unless a config says otherwise.

A threshold never empties a mask: a cue smaller than a cell (a 15-px stamp on a
stride-32 backbone's 3×3 grid at 96 px covers at most 0.03 of a cell) keeps its most
covered cell(s), and ``threshold_report`` says, image by image, where that happened.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter

RESIZE_MODES = ("area", "soft", "dilate")
MASK_VARIANTS = ("none", "inverted", "random", "incomplete")
#: default resize: any cell at least 25 % covered (see the module docstring)
DEFAULT_RESIZE = {"mode": "area", "threshold": 0.25}


def _as_binary(masks) -> np.ndarray:
    m = np.asarray(masks)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"masks must be [N,H,W] or [H,W], got shape {m.shape}")
    return (m > 0).astype(np.float32)


def _overlap_matrix(size: int, cells: int) -> np.ndarray:
    """``R [cells, size]``: share of pixel ``y`` (interval [y, y+1)) inside cell ``i``, over the cell length."""
    edges = np.arange(cells + 1, dtype=np.float64) * (size / cells)
    lo = np.maximum(edges[:-1, None], np.arange(size)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(size)[None, :] + 1.0)
    return (np.clip(hi - lo, 0.0, None) / (size / cells)).astype(np.float64)


def area_fraction(*, masks, grid: tuple[int, int]) -> np.ndarray:
    """Exact fraction of each grid cell covered by the mask.

    Args:
        masks: ``[N, H, W]`` (or ``[H, W]``); nonzero = irrelevant.
        grid: ``(h, w)`` of the activation grid (need not divide ``H, W``).

    Returns:
        ``[N, h, w]`` float32 in [0, 1].
    """
    m = _as_binary(masks).astype(np.float64)
    _, hh, ww = m.shape
    rows = _overlap_matrix(hh, int(grid[0]))
    cols = _overlap_matrix(ww, int(grid[1]))
    return np.einsum("iy,nyx,jx->nij", rows, m, cols).astype(np.float32).clip(0.0, 1.0)


def dilate(masks, *, pixels: int) -> np.ndarray:
    """Binary dilation by a ``(2·pixels+1)²`` square; ``[N,H,W]`` -> ``[N,H,W]`` float32 {0,1}."""
    m = _as_binary(masks)
    if pixels <= 0:
        return m

    return maximum_filter(m, size=(1, 2 * pixels + 1, 2 * pixels + 1), mode="constant").astype(np.float32)


def _keep_nonempty(fractions: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Images with a non-empty mask but no cell above the threshold keep their most covered cell(s)."""
    lost = (fractions.max(axis=(1, 2)) > 0) & ~cells.any(axis=(1, 2))
    if lost.any():
        top = fractions[lost].max(axis=(1, 2), keepdims=True)
        cells[lost] = fractions[lost] >= top
    return cells


def threshold_report(*, masks, grid: tuple[int, int], threshold: float = 0.25) -> list[dict]:
    """Which masks an area threshold would empty on ``grid`` (``resize_masks`` keeps
    their most covered cell(s) instead).

    Args:
        masks: ``[N, H, W]``; nonzero = irrelevant.
        grid: ``(h, w)``.
        threshold: the area threshold.

    Returns:
        One ``{"position", "max_cell_fraction", "kept_cells"}`` per such image (position
        in ``masks``), in order; empty when every mask survives the threshold.
    """
    f = area_fraction(masks=masks, grid=grid)
    top = f.max(axis=(1, 2))
    lost = np.flatnonzero((top > 0) & ~(f > threshold).any(axis=(1, 2)))
    return [{"position": int(i), "max_cell_fraction": round(float(top[i]), 4),
             "kept_cells": int((f[i] >= top[i]).sum())} for i in lost]


def resize_masks(*, masks, grid: tuple[int, int], mode: str = "area", threshold: float = 0.25,
                 dilate_px: int | None = None) -> np.ndarray:
    """Image-resolution masks -> activation-grid masks (see the module docstring).

    Args:
        masks: ``[N, H, W]`` or ``[H, W]``; nonzero = irrelevant.
        grid: ``(h, w)``.
        mode: ``"area"``, ``"soft"`` or ``"dilate"``.
        threshold: for ``"area"``: a cell is masked when its covered fraction is
            strictly greater than this, in [0, 1).
        dilate_px: for ``"dilate"``: dilation radius in pixels (default one stride).

    Returns:
        ``[N, h, w]`` float32 (binary for area/dilate, fractions for soft). An empty
        mask stays all zero in every mode; a non-empty one never becomes empty (with
        ``"area"``, when no cell is covered above ``threshold`` its most covered
        cell(s) are kept: ``threshold_report`` lists those images).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown mask resize mode {mode!r} (valid: {', '.join(RESIZE_MODES)})")
    if mode == "soft":
        return area_fraction(masks=masks, grid=grid)
    if mode == "area":
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"area threshold must be in [0, 1), got {threshold}")
        f = area_fraction(masks=masks, grid=grid)
        return _keep_nonempty(f, f > threshold).astype(np.float32)
    m = _as_binary(masks)
    px = int(math.ceil(m.shape[1] / grid[0])) if dilate_px is None else int(dilate_px)
    return (area_fraction(masks=dilate(m, pixels=px), grid=grid) > 0).astype(np.float32)


def mask_variant(masks, *, variant: str, rng: np.random.Generator) -> np.ndarray:
    """Feedback-quality controls applied to image-resolution masks.

    Args:
        masks: ``uint8 [N, H, W]``, 255 = irrelevant.
        variant: ``"none"``; ``"inverted"`` (255 − M: everything *but* the painted
            region); ``"random"`` (the same mask rolled by a random offset with
            wrap-around: same area, random place); ``"incomplete"`` (the half of the
            mask on one side of its bounding box's midline — the longer side — removed).
        rng: NumPy generator (offsets for ``random``).

    Returns:
        ``uint8 [N, H, W]`` in {0, 255}.
    """
    m = (np.asarray(masks) > 0)
    if variant not in MASK_VARIANTS:
        raise ValueError(f"unknown mask variant {variant!r} (valid: {', '.join(MASK_VARIANTS)})")
    out = m.copy()
    if variant == "inverted":
        out = ~m
    elif variant == "random":
        _, hh, ww = m.shape
        for i in range(len(m)):
            out[i] = np.roll(m[i], (int(rng.integers(hh)), int(rng.integers(ww))), axis=(0, 1))
    elif variant == "incomplete":
        for i in range(len(m)):
            ys, xs = np.nonzero(m[i])
            if len(ys) == 0:
                continue
            if ys.max() - ys.min() >= xs.max() - xs.min():
                cut = np.median(ys)
                keep = np.arange(m.shape[1])[:, None] < cut
            else:
                cut = np.median(xs)
                keep = np.arange(m.shape[2])[None, :] < cut
            out[i] = m[i] & keep
            if out[i].sum() == 0:  # a one-row mask: remove half of its pixels instead
                flat = np.flatnonzero(m[i])
                out[i] = False
                out[i].flat[flat[: len(flat) // 2]] = True
    return np.where(out, 255, 0).astype(np.uint8)
