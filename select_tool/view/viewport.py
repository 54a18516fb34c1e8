"""Zoom and pan of one image pane: canvas pixels <-> image pixels (no Tk).

The pane shows the image scaled by ``zoom`` (any positive float) with its top-left
corner at canvas position ``(ox, oy)``. Canvas pixel ``x`` (covering ``[x, x+1)``)
shows image column ``floor((x + 0.5 - ox) / zoom)`` (nearest neighbour), and a mouse
event at canvas pixel ``x`` means image column ``(x + 0.5 - ox) / zoom - 0.5`` in
``SelectionState`` coordinates (pixel centres at integers). Both use the same
formula, so the pixel a brush dot lands on is the pixel under the cursor at every
zoom, and rendering costs O(pane pixels), not O(image pixels · zoom²).
"""
from __future__ import annotations

import math

import numpy as np

MAX_ZOOM = 64.0
KEEP_VISIBLE = 24  # canvas pixels of the image that panning always leaves in view


class Viewport:
    """Zoom/pan state of a pane of ``pane_wh`` canvas pixels showing an ``image_hw`` image.

    Starts in *fit* mode: the whole image, centred, as large as fits (down-scaled
    when larger than the pane). Resizing the pane refits while in fit mode and keeps
    the image point at the pane centre otherwise. Zooming or panning leaves fit mode.
    """

    def __init__(self, image_hw: tuple[int, int], pane_wh: tuple[int, int] = (1, 1)):
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        if min(self.image_hw) < 1:
            raise ValueError(f"image_hw must be positive, got {image_hw}")
        self.pane_w, self.pane_h = max(1, int(pane_wh[0])), max(1, int(pane_wh[1]))
        self.zoom, self.ox, self.oy = 1.0, 0.0, 0.0
        self.fit_mode = True
        self.fit()

    # ----- state changes ----------------------------------------------------------
    @property
    def fit_zoom(self) -> float:
        h, w = self.image_hw
        return min(self.pane_w / w, self.pane_h / h)

    @property
    def min_zoom(self) -> float:
        return min(1.0, self.fit_zoom) / 2.0

    def fit(self) -> None:
        """The whole image, centred, as large as the pane allows (F key)."""
        h, w = self.image_hw
        self.zoom = min(self.fit_zoom, MAX_ZOOM)
        self.ox = (self.pane_w - w * self.zoom) / 2.0
        self.oy = (self.pane_h - h * self.zoom) / 2.0
        self.fit_mode = True

    def set_zoom(self, zoom: float) -> None:
        """A fixed zoom (``--zoom``), the image centred; leaves fit mode."""
        h, w = self.image_hw
        self.zoom = min(max(float(zoom), self.min_zoom), MAX_ZOOM)
        self.fit_mode = False
        self._center_on(h / 2.0 - 0.5, w / 2.0 - 0.5)

    def set_pane(self, width: int, height: int) -> None:
        """The pane was resized: refit in fit mode, else keep the centre point."""
        width, height = max(1, int(width)), max(1, int(height))
        if (width, height) == (self.pane_w, self.pane_h):
            return
        if self.fit_mode:
            self.pane_w, self.pane_h = width, height
            self.fit()
            return
        cr, cc = self.to_image(self.pane_w / 2.0 - 0.5, self.pane_h / 2.0 - 0.5)
        self.pane_w, self.pane_h = width, height
        self._center_on(cr, cc)

    def _center_on(self, row: float, col: float) -> None:
        self.ox = self.pane_w / 2.0 - (col + 0.5) * self.zoom
        self.oy = self.pane_h / 2.0 - (row + 0.5) * self.zoom
        self._clamp()

    def zoom_at(self, factor: float, x: float, y: float) -> float:
        """Multiplies the zoom by ``factor`` keeping the image point under canvas ``(x, y)`` fixed."""
        if not factor > 0:
            raise ValueError(f"zoom factor must be > 0, got {factor}")
        new = min(max(self.zoom * factor, self.min_zoom), MAX_ZOOM)
        ux, uy = (x + 0.5 - self.ox) / self.zoom, (y + 0.5 - self.oy) / self.zoom
        self.zoom = new
        self.ox, self.oy = x + 0.5 - ux * new, y + 0.5 - uy * new
        self.fit_mode = False
        self._clamp()
        return self.zoom

    def pan(self, dx: float, dy: float) -> None:
        """Moves the image by ``(dx, dy)`` canvas pixels (a part always stays visible)."""
        self.ox += dx
        self.oy += dy
        self.fit_mode = False
        self._clamp()

    def _clamp(self) -> None:
        h, w = self.image_hw
        keep_x = min(KEEP_VISIBLE, w * self.zoom, self.pane_w)
        keep_y = min(KEEP_VISIBLE, h * self.zoom, self.pane_h)
        self.ox = min(max(self.ox, keep_x - w * self.zoom), self.pane_w - keep_x)
        self.oy = min(max(self.oy, keep_y - h * self.zoom), self.pane_h - keep_y)

    # ----- mapping ----------------------------------------------------------------
    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Canvas pixel ``(x, y)`` of the pane -> image ``(row, col)``, pixel centres at integers."""
        return (y + 0.5 - self.oy) / self.zoom - 0.5, (x + 0.5 - self.ox) / self.zoom - 0.5

    def to_canvas(self, row: float, col: float) -> tuple[float, float]:
        """Image ``(row, col)`` -> canvas ``(x, y)`` (inverse of ``to_image``)."""
        return (col + 0.5) * self.zoom + self.ox - 0.5, (row + 0.5) * self.zoom + self.oy - 0.5

    def pixel_at(self, x: int, y: int) -> tuple[int, int]:
        """The image pixel ``(row, col)`` canvas pixel ``(x, y)`` shows (may lie outside the image)."""
        return math.floor((y + 0.5 - self.oy) / self.zoom), math.floor((x + 0.5 - self.ox) / self.zoom)

    def sample_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per pane row/column, the image row/column shown, and whether it lies inside the image.

        Returns:
            ``(rows [pane_h] int, cols [pane_w] int, row_ok [pane_h] bool, col_ok [pane_w] bool)``;
            rows/cols are clipped into the image so they can index it directly.
        """
        h, w = self.image_hw
        rows = np.floor((np.arange(self.pane_h) + 0.5 - self.oy) / self.zoom).astype(np.int64)
        cols = np.floor((np.arange(self.pane_w) + 0.5 - self.ox) / self.zoom).astype(np.int64)
        row_ok, col_ok = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
        return np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1), row_ok, col_ok

    def describe(self) -> dict:
        """Plain numbers for debug events and tests."""
        return {"zoom": self.zoom, "ox": self.ox, "oy": self.oy, "pane": [self.pane_w, self.pane_h],
                "fit": self.fit_mode}

    def zoom_percent(self) -> str:
        return f"{self.zoom * 100:.0f} %"
