"""The masks of the mask tool: per image a mask, its CAM class and note, undo / redo, strokes (no Tk).

``MaskBook`` knows nothing of the list, the view or the files: every edit names the
image it changes and the CAM class the mask refers to, is one undo step of that
image, and marks the image ``dirty`` (to autosave) and its export digest stale.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from select_tool.export.exporter import item_digest, mask_digest
from select_tool.state.geometry import fill_region, paint_segment, polygon_pixels, rect_pixels

#: painting tools: round brush, eraser, rectangle, lasso (polygon filled on release), bucket fill
MODES = ("brush", "eraser", "rect", "lasso", "fill")
MIN_BRUSH, MAX_BRUSH = 1, 64
BIG_BRUSH_STEP = 5


@dataclasses.dataclass
class Stroke:
    """A stroke in progress: the image, its mask before the stroke (for undo), the points so far,
    the value painted (255, or 0 for the eraser) and the tool."""

    index: str
    before: np.ndarray
    points: list[tuple[float, float]]
    value: int
    mode: str

    @property
    def last(self) -> tuple[float, float]:
        return self.points[-1]


class MaskBook:
    """Masks ``uint8 [H, W]`` (0 keep, 255 irrelevant) of the images the expert touched.

    Args:
        image_hw: ``(H, W)`` of every mask.
        undo_depth: undo steps kept per image.
    """

    def __init__(self, image_hw: tuple[int, int], undo_depth: int = 50):
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.undo_depth = int(undo_depth)
        self.masks: dict[str, np.ndarray] = {}
        self.cam_classes: dict[str, int] = {}
        self.notes: dict[str, str] = {}
        self.dirty: set[str] = set()
        self.stroke: Stroke | None = None
        self._undo: dict[str, list[np.ndarray]] = {}
        self._redo: dict[str, list[np.ndarray]] = {}
        self._digests: dict[str, str] = {}
        self._zero = np.zeros(self.image_hw, np.uint8)
        self._zero.setflags(write=False)

    # ----- reading ----------------------------------------------------------------
    def mask(self, index: str) -> np.ndarray:
        """The mask of ``index``; a read-only zero mask if none."""
        return self.masks.get(index, self._zero)

    def has_mask(self, index: str) -> bool:
        m = self.masks.get(index)
        return m is not None and bool(m.any())

    def masked(self, indices: Iterable[str]) -> list[str]:
        return [i for i in indices if self.has_mask(i)]

    def digest(self, index: str, default_class: int) -> str:
        """What an export of ``index`` holds: mask pixels, CAM class and note."""
        h = self._digests.get(index)
        if h is None:
            h = self._digests[index] = mask_digest(self.masks[index])
        return item_digest(h, int(self.cam_classes.get(index, default_class)), self.notes.get(index, ""))

    def depth(self, index: str) -> tuple[int, int]:
        """``(undo steps, redo steps)`` of ``index``."""
        return len(self._undo.get(index, [])), len(self._redo.get(index, []))

    # ----- loading (no undo step, not dirty) ----------------------------------------
    def load(self, index: str, mask: np.ndarray, cam_class: int, note: str = "") -> None:
        self.masks[index] = np.asarray(mask, np.uint8).copy()
        self.cam_classes[index] = int(cam_class)
        self.notes[index] = note

    # ----- edits ----------------------------------------------------------------------
    def _editable(self, index: str) -> np.ndarray:
        m = self.masks.get(index)
        if m is None:
            m = self.masks[index] = np.zeros(self.image_hw, np.uint8)
        return m

    def _commit(self, index: str, before: np.ndarray, cam_class: int | None) -> None:
        stack = self._undo.setdefault(index, [])
        stack.append(before)
        del stack[:-self.undo_depth]
        self._redo[index] = []
        if cam_class is not None:
            self.cam_classes[index] = int(cam_class)
        self._touch(index)

    def _touch(self, index: str) -> None:
        self.dirty.add(index)
        self._digests.pop(index, None)

    def replace(self, index: str, new: np.ndarray, cam_class: int | None) -> bool:
        """Sets the mask of ``index`` to ``new`` (nonzero = irrelevant) as one undo step; False if unchanged."""
        new = np.where(np.asarray(new) > 0, 255, 0).astype(np.uint8)
        if new.shape != self.image_hw:
            raise ValueError(f"mask has shape {new.shape}, expected {self.image_hw}")
        m = self._editable(index)
        if np.array_equal(m, new):
            return False
        before = m.copy()
        m[:] = new
        self._commit(index, before, cam_class)
        return True

    def add(self, index: str, pixels: np.ndarray, cam_class: int | None) -> int:
        """Adds the ``True`` pixels of ``pixels`` to the mask (one undo step); the number newly masked."""
        m = self._editable(index)
        new = np.asarray(pixels, bool) & (m == 0)
        added = int(new.sum())
        if added:
            before = m.copy()
            m[new] = 255
            self._commit(index, before, cam_class)
        return added

    def clear(self, index: str) -> bool:
        m = self.masks.get(index)
        if m is None or not m.any():
            return False
        return self.replace(index, np.zeros(self.image_hw, np.uint8), None)

    def step(self, index: str, *, undo: bool) -> bool:
        """Undo (or redo) the last committed edit of ``index``."""
        source, target = (self._undo, self._redo) if undo else (self._redo, self._undo)
        stack = source.get(index)
        if not stack:
            return False
        m = self._editable(index)
        target.setdefault(index, []).append(m.copy())
        m[:] = stack.pop()
        self._touch(index)
        return True

    # ----- strokes: begin, extend*, end -------------------------------------------------
    def begin_stroke(self, index: str, point: Sequence[float], *, mode: str, radius: float):
        """Mouse down: brush / eraser paint a dot, the other tools remember the point.
        Returns the touched pixel box or None."""
        m = self._editable(index)
        p = (float(point[0]), float(point[1]))
        self.stroke = Stroke(index, m.copy(), [p], 0 if mode == "eraser" else 255, mode)
        if mode in ("brush", "eraser"):
            return paint_segment(m, p, p, radius=radius, value=self.stroke.value)
        return None

    def extend_stroke(self, point: Sequence[float], *, radius: float):
        """Mouse drag: brush / eraser paint the segment from the previous point (no gaps)."""
        s = self.stroke
        if s is None:
            return None
        p = (float(point[0]), float(point[1]))
        last = s.last
        s.points.append(p)
        if s.mode in ("brush", "eraser"):
            return paint_segment(self.masks[s.index], last, p, radius=radius, value=s.value)
        return None

    def preview(self) -> tuple[str, object] | None:
        """``("rect", box)`` or ``("lasso", points)`` of the stroke in progress, or None."""
        s = self.stroke
        if s is None or s.mode not in ("rect", "lasso"):
            return None
        if s.mode == "rect":
            return "rect", rect_pixels(s.points[0], s.last, self.image_hw)
        return "lasso", list(s.points)

    def end_stroke(self, cam_class: int) -> str | None:
        """Mouse up: applies rectangle / lasso / fill and commits one undo step.
        Returns the image changed, or None."""
        s = self.stroke
        if s is None:
            return None
        self.stroke = None
        m = self.masks[s.index]
        if s.mode == "rect":
            box = rect_pixels(s.points[0], s.last, self.image_hw)
            if box is not None:
                r0, r1, c0, c1 = box
                m[r0:r1 + 1, c0:c1 + 1] = s.value
        elif s.mode == "lasso":
            m[polygon_pixels(s.points, self.image_hw)] = s.value
        elif s.mode == "fill":
            m[fill_region(s.before, *s.points[0])] = s.value
        if np.array_equal(m, s.before):
            return None
        self._commit(s.index, s.before, cam_class)
        return s.index
