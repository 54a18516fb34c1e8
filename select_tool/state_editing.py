"""Mask editing of the mask tool: brush / eraser / rectangle strokes, clear, mask from CAM, undo / redo (no Tk).

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes).
A stroke is begun, extended and ended by the mouse; every completed edit is one
undo step per image and is autosaved (``select_tool.state_session``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common.errors import UserError
from select_tool.errors import NotReady
from select_tool.strokes import paint_segment, rect_pixels

MODES = ("brush", "eraser", "rect")
MIN_BRUSH, MAX_BRUSH = 1, 64
BIG_BRUSH_STEP = 5


@dataclasses.dataclass
class Stroke:
    """A stroke in progress: the image, its mask before the stroke (for undo), the last point,
    the value painted (255 brush / rect, 0 eraser) and, in rect mode, the anchored corner."""

    index: str
    before: np.ndarray
    last: tuple[float, float]
    value: int
    rect_start: tuple[float, float] | None = None


class EditingMixin:
    """Tool and brush size, ``mask``, strokes, ``clear_mask``, ``mask_from_cam``, ``undo``/``redo``."""

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise UserError(f"unknown mode '{mode}' (valid: {', '.join(MODES)})")
        self.end_stroke()
        self.mode = mode
        self._changed("tool")

    def change_brush_size(self, delta: int) -> int:
        """Adds ``delta`` pixels (clamped to 1..64); ``BIG_BRUSH_STEP`` is the Shift+[ / ] step."""
        self.brush_size = int(min(max(self.brush_size + int(delta), MIN_BRUSH), MAX_BRUSH))
        self._changed("tool")
        return self.brush_size

    def mask(self, index: str | None = None) -> np.ndarray:
        """The mask of ``index`` (default: current); a read-only zero mask if none."""
        return self.masks.get(self.current if index is None else index, self._zero)

    def has_mask(self, index: str) -> bool:
        m = self.masks.get(index)
        return m is not None and bool(m.any())

    def _editable(self, index: str) -> np.ndarray:
        m = self.masks.get(index)
        if m is None:
            m = self.masks[index] = np.zeros(self.image_hw, np.uint8)
        return m

    def _touch(self, index: str) -> None:
        """The mask of ``index`` changed: autosave it, and its export digest is stale."""
        self.dirty.add(index)
        self._digests.pop(index, None)

    def _push_undo(self, index: str, before: np.ndarray) -> None:
        stack = self._undo.setdefault(index, [])
        stack.append(before)
        del stack[:-self.undo_depth]
        self._redo[index] = []

    # strokes (brush / eraser / rectangle) -- begin, extend*, end
    def begin_stroke(self, row: float, col: float):
        """Mouse down at ``(row, col)``: brush/eraser paints a dot; rect mode anchors a corner.

        Raises:
            UserError: the mask is hidden (painting blind is not allowed).
        """
        self.end_stroke()
        if not self.show_mask:
            raise UserError("the mask is hidden, so painting is off: press M to show it")
        idx = self.current
        m = self._editable(idx)
        value = 0 if self.mode == "eraser" else 255
        self._stroke = Stroke(idx, m.copy(), (row, col), value)
        if self.mode == "rect":
            self._stroke.rect_start = (row, col)
            return None
        box = paint_segment(m, (row, col), (row, col), radius=self.brush_size / 2, value=value)
        self._changed("paint")
        return box

    def extend_stroke(self, row: float, col: float):
        """Mouse drag to ``(row, col)``: paints the segment from the previous point (no gaps)."""
        s = self._stroke
        if s is None:
            return None
        if s.rect_start is not None:
            s.last = (row, col)
            self._changed("rect")
            return None
        box = paint_segment(self.masks[s.index], s.last, (row, col), radius=self.brush_size / 2, value=s.value)
        s.last = (row, col)
        self._changed("paint")
        return box

    def rect_preview(self):
        """Pixel box the rectangle in progress would fill, or None."""
        s = self._stroke
        if s is None or s.rect_start is None:
            return None
        return rect_pixels(s.rect_start, s.last, self.image_hw)

    def end_stroke(self, row: float | None = None, col: float | None = None) -> bool:
        """Mouse up: commits the stroke (one undo step) and autosaves. False if nothing changed."""
        s = self._stroke
        if s is None:
            return False
        if row is not None and col is not None:
            self.extend_stroke(row, col)
        self._stroke = None
        m = self.masks[s.index]
        if s.rect_start is not None:
            box = rect_pixels(s.rect_start, s.last, self.image_hw)
            if box is not None:
                r0, r1, c0, c1 = box
                m[r0:r1 + 1, c0:c1 + 1] = s.value
        if np.array_equal(m, s.before):
            self._changed("paint")
            return False
        self._push_undo(s.index, s.before)
        # the CAM shown while painting is the one the mask refers to (go() ends strokes first)
        self.cam_classes[s.index] = self.cam_class
        self._touch(s.index)
        self.save()
        return True

    def clear_mask(self) -> bool:
        """Clears the current mask (one undo step)."""
        self.end_stroke()
        idx = self.current
        m = self.masks.get(idx)
        if m is None or not m.any():
            return False
        self._push_undo(idx, m.copy())
        m[:] = 0
        self._touch(idx)
        self.save()
        return True

    def mask_from_cam(self, cam01: np.ndarray, threshold: float | None = None) -> int:
        """Adds the pixels where the shown CAM (scaled to [0, 1]) is >= ``threshold`` to the mask.

        One undo step; records the shown CAM class as the mask's ``cam_class``.

        Returns:
            The number of pixels newly masked.

        Raises:
            UserError: no CAM yet, the mask is hidden, or nothing reaches the threshold.
        """
        self.end_stroke()
        if cam01 is None:
            raise NotReady("the CAM of this image is still being computed; try again shortly")
        if not self.show_mask:
            raise UserError("the mask is hidden, so painting is off: press M to show it")
        t = self.cam_threshold if threshold is None else float(threshold)
        cam01 = np.asarray(cam01)
        if cam01.shape != self.image_hw:
            raise ValueError(f"CAM has shape {cam01.shape}, expected {self.image_hw}")
        hot = cam01 >= t
        idx = self.current
        m = self._editable(idx)
        added = int((hot & (m == 0)).sum())
        if not added:
            raise UserError(f"no unmasked pixel of the shown CAM reaches {t:.2f} (of its scale); lower the threshold")
        self._push_undo(idx, m.copy())
        m[hot] = 255
        self.cam_classes[idx] = self.cam_class
        self._touch(idx)
        self.save()
        return added

    def undo(self) -> bool:
        """Undoes the last committed edit of the current image."""
        return self._step_history(self._undo, self._redo)

    def redo(self) -> bool:
        """Re-applies the last undone edit of the current image."""
        return self._step_history(self._redo, self._undo)

    def _step_history(self, source: dict, target: dict) -> bool:
        """Pops the current image's mask from ``source``, pushing the present mask on ``target``."""
        self.end_stroke()
        idx = self.current
        stack = source.get(idx)
        if not stack:
            return False
        m = self._editable(idx)
        target.setdefault(idx, []).append(m.copy())
        m[:] = stack.pop()
        self._touch(idx)
        self.save()
        return True

    def undo_depth_available(self, index: str | None = None) -> tuple[int, int]:
        idx = self.current if index is None else index
        return len(self._undo.get(idx, [])), len(self._redo.get(idx, []))
