"""The mask tool's editing commands on the current image (no Tk).

``Editor`` turns the expert's actions (strokes of the painting tools, clear, mask from
CAM, accept a suggestion, copy the previous image's mask, apply a mask to other
images, undo / redo) into ``MaskBook`` edits of the current image with the shown CAM
class, and autosaves after each completed one. It reaches the rest of the state only
through the callables it is given.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from common.errors import UserError
from select_tool.state.errors import NotReady
from select_tool.state.masks import MaskBook
from select_tool.state.suggestions import SuggestedMasks
from select_tool.state.view_settings import ViewSettings

HIDDEN = "the mask is hidden, so painting is off: press M to show it"


class Editor:
    """Editing commands.

    Args:
        book: the masks.
        view: the tool, brush size, threshold and whether the mask is shown.
        current: ``() -> index`` of the image on screen.
        cam_class: ``() -> class`` of the CAM on screen (recorded with each edited mask).
        set_cam_class: shows another CAM class (accepting a suggestion on an unmasked image).
        autosave: ``() -> None`` after every completed edit (raises UserError on failure).
        changed: ``(what) -> None`` for the window ("paint", "rect", "tool").
    """

    def __init__(self, *, book: MaskBook, view: ViewSettings, current: Callable[[], str],
                 cam_class: Callable[[], int], set_cam_class: Callable[[int], None],
                 autosave: Callable[[], object], changed: Callable[[str], None]):
        self.book, self.view = book, view
        self._current, self._cam_class, self._set_cam_class = current, cam_class, set_cam_class
        self._autosave, self._changed = autosave, changed

    def _check_shown(self) -> None:
        if not self.view.show_mask:
            raise UserError(HIDDEN)

    def _done(self, changed: bool) -> bool:
        if changed:
            self._autosave()
        return changed

    # ----- tool -------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.end_stroke()
        self.view.set_mode(mode)
        self._changed("tool")

    def change_brush_size(self, delta: int) -> int:
        """Adds ``delta`` pixels to the brush diameter (clamped to 1..64)."""
        size = self.view.set_brush_size(self.view.brush_size + int(delta))
        self._changed("tool")
        return size

    def set_brush_size(self, size: int) -> int:
        size = self.view.set_brush_size(size)
        self._changed("tool")
        return size

    # ----- strokes: begin, extend*, end -----------------------------------------------------
    def begin_stroke(self, row: float, col: float):
        """Mouse down at ``(row, col)``: brush / eraser paint a dot; rectangle, lasso and fill
        remember the point.

        Raises:
            UserError: the mask is hidden (painting blind is not allowed).
        """
        self.end_stroke()
        self._check_shown()
        box = self.book.begin_stroke(self._current(), (row, col), mode=self.view.mode,
                                     radius=self.view.brush_size / 2)
        self._changed("paint")
        return box

    def extend_stroke(self, row: float, col: float):
        """Mouse drag to ``(row, col)``: brush / eraser paint the segment from the last point."""
        if self.book.stroke is None:
            return None
        box = self.book.extend_stroke((row, col), radius=self.view.brush_size / 2)
        self._changed("paint" if box is not None else "rect")
        return box

    def rect_preview(self):
        """Pixel box the rectangle in progress would fill, or None."""
        pre = self.book.preview()
        return pre[1] if pre is not None and pre[0] == "rect" else None

    def lasso_preview(self) -> list | None:
        """The points of the lasso in progress, or None."""
        pre = self.book.preview()
        return pre[1] if pre is not None and pre[0] == "lasso" else None

    def end_stroke(self, row: float | None = None, col: float | None = None) -> bool:
        """Mouse up: commits the stroke (one undo step) and autosaves. False if nothing changed."""
        if self.book.stroke is None:
            return False
        if row is not None and col is not None:
            self.extend_stroke(row, col)
        changed = self.book.end_stroke(self._cam_class()) is not None
        self._changed("paint")
        return self._done(changed)

    # ----- whole-mask edits --------------------------------------------------------------------
    def clear_mask(self) -> bool:
        """Clears the current mask (one undo step)."""
        self.end_stroke()
        return self._done(self.book.clear(self._current()))

    def mask_from_cam(self, cam01: np.ndarray | None, threshold: float | None = None) -> int:
        """Adds the pixels where the shown CAM (scaled to [0, 1]) is >= ``threshold`` to the mask.

        Returns:
            The number of pixels newly masked (one undo step).

        Raises:
            UserError: no CAM yet, the mask is hidden, or nothing reaches the threshold.
        """
        self.end_stroke()
        if cam01 is None:
            raise NotReady("the CAM of this image is still being computed; try again shortly")
        self._check_shown()
        t = self.view.cam_threshold if threshold is None else float(threshold)
        cam01 = np.asarray(cam01)
        if cam01.shape != self.book.image_hw:
            raise ValueError(f"CAM has shape {cam01.shape}, expected {self.book.image_hw}")
        added = self.book.add(self._current(), cam01 >= t, self._cam_class())
        if not added:
            raise UserError(f"no unmasked pixel of the shown CAM reaches {t:.2f} (of its scale); lower the threshold")
        self._done(True)
        return added

    def accept_suggestion(self, suggested: SuggestedMasks) -> int:
        """Y: adds the current image's suggested mask (one undo step); an image without a mask
        takes the suggestion's CAM class. Returns the pixels added."""
        self.end_stroke()
        idx = self._current()
        sug = suggested.adding(idx, self.book.mask(idx))
        if sug is None:
            raise UserError(f"no suggested mask adds anything to '{idx}'")
        self._check_shown()
        if not self.book.has_mask(idx):
            self._set_cam_class(suggested.cam[idx])
        added = self.book.add(idx, sug > 0, self._cam_class())
        self._done(True)
        return added

    def copy_from(self, source: str | None) -> bool:
        """Replaces the current mask by ``source``'s (and takes its CAM class): one undo step."""
        self.end_stroke()
        self._check_shown()
        idx = self._current()
        if source is None or not self.book.has_mask(source):
            raise UserError(f"the previous image {'' if source is None else repr(source) + ' '}has no mask to copy")
        cls = self.book.cam_classes.get(source, self._cam_class())
        if not self.book.replace(idx, self.book.mask(source), cls):
            raise UserError(f"'{idx}' already has exactly the mask of '{source}'")
        self._set_cam_class(cls)
        return self._done(True)

    def apply_to(self, targets: Sequence[str]) -> int:
        """Adds the current mask to each image of ``targets`` (one undo step each, the CAM class
        of the current mask); the number of images changed."""
        self.end_stroke()
        self._check_shown()
        idx = self._current()
        if not self.book.has_mask(idx):
            raise UserError(f"'{idx}' has no mask to apply")
        src, cls = self.book.mask(idx) > 0, self.book.cam_classes.get(idx, self._cam_class())
        n = sum(1 for t in targets if t != idx and self.book.add(t, src, cls))
        return n if self._done(n > 0) else 0

    # ----- history ----------------------------------------------------------------------------------
    def undo(self) -> bool:
        """Undoes the last committed edit of the current image."""
        self.end_stroke()
        return self._done(self.book.step(self._current(), undo=True))

    def redo(self) -> bool:
        """Re-applies the last undone edit of the current image."""
        self.end_stroke()
        return self._done(self.book.step(self._current(), undo=False))

    def undo_depth_available(self, index: str | None = None) -> tuple[int, int]:
        return self.book.depth(self._current() if index is None else index)
