"""Pixel-exact brush, rectangle, lasso and fill geometry of the mask tool (no Tk, NumPy only).

Coordinates are image pixels ``(row, col)`` as floats with pixel centres at integers.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage.draw import polygon2mask


def paint_segment(mask: np.ndarray, p0: Sequence[float], p1: Sequence[float], *, radius: float, value: int):
    """Sweeps a round brush of ``radius`` from ``p0`` to ``p1`` (a capsule) into ``mask`` in place.

    A pixel is painted iff the distance from its centre to the segment ``p0 p1`` is at
    most ``radius``. This is exact, has no gaps however far apart two mouse events
    are, and is what a round brush dragged along a straight line covers; it works on
    the segment's bounding box only, so a paint call costs microseconds.

    Args:
        mask: ``uint8 [H, W]``, modified in place.
        p0, p1: ``(row, col)`` floats, pixel centres at integers.
        radius: brush radius in pixels (diameter / 2).
        value: 255 (brush) or 0 (eraser).

    Returns:
        The touched box ``(r0, r1, c0, c1)`` (inclusive) or None if outside the image.
    """
    h, w = mask.shape
    (a_r, a_c), (b_r, b_c) = (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))
    r0 = max(0, math.floor(min(a_r, b_r) - radius))
    r1 = min(h - 1, math.ceil(max(a_r, b_r) + radius))
    c0 = max(0, math.floor(min(a_c, b_c) - radius))
    c1 = min(w - 1, math.ceil(max(a_c, b_c) + radius))
    if r0 > r1 or c0 > c1:
        return None
    rr, cc = np.mgrid[r0:r1 + 1, c0:c1 + 1].astype(np.float64)
    dr, dc = b_r - a_r, b_c - a_c
    length2 = dr * dr + dc * dc
    if length2 > 0:
        t = np.clip(((rr - a_r) * dr + (cc - a_c) * dc) / length2, 0.0, 1.0)
    else:
        t = np.zeros_like(rr)
    dist2 = (rr - (a_r + t * dr)) ** 2 + (cc - (a_c + t * dc)) ** 2
    region = mask[r0:r1 + 1, c0:c1 + 1]
    region[dist2 <= radius * radius + 1e-9] = value
    return (r0, r1, c0, c1)


def rect_pixels(p0: Sequence[float], p1: Sequence[float], hw: tuple[int, int]):
    """Inclusive pixel box ``(r0, r1, c0, c1)`` spanned by two corner points (rounded), clipped."""
    h, w = hw
    r0, r1 = sorted((int(round(p0[0])), int(round(p1[0]))))
    c0, c1 = sorted((int(round(p0[1])), int(round(p1[1]))))
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, h - 1), min(c1, w - 1)
    if r0 > r1 or c0 > c1:
        return None
    return (r0, r1, c0, c1)


def polygon_pixels(points: Sequence[Sequence[float]], hw: tuple[int, int]) -> np.ndarray:
    """``bool [H, W]``: the pixels whose centre lies inside the closed polygon ``points`` (lasso).

    ``points`` are ``(row, col)`` floats, pixel centres at integers; the polygon is closed
    from the last point back to the first. Fewer than three points enclose nothing.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return np.zeros(hw, bool)
    return polygon2mask(hw, pts)


def fill_region(mask: np.ndarray, row: float, col: float) -> np.ndarray:
    """``bool [H, W]``: the 4-connected region of unmasked pixels containing pixel ``(row, col)``
    (rounded); empty when that pixel is masked or outside the image (bucket fill)."""
    h, w = mask.shape
    r, c = int(round(row)), int(round(col))
    if not (0 <= r < h and 0 <= c < w) or mask[r, c]:
        return np.zeros((h, w), bool)
    labels, _ = ndimage.label(np.asarray(mask) == 0)
    return labels == labels[r, c]
