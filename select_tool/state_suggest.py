"""Suggested masks (e.g. propagated by the retraining side) that the expert accepts with one key.

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes).
If the session folder holds ``suggested_masks/selection.json`` (the selection
format, masks relative to it), each listed mask is shown as an outline on its
image; **Y** adds it to the image's mask as one undo step. Unreadable entries are
reported in ``load_problems`` and skipped.
"""
from __future__ import annotations

import numpy as np

from common.errors import UserError
from common.images import read_mask
from datasets.selection import load_selection

SUGGESTED_DIR = "suggested_masks"


class SuggestedMasksMixin:
    """``suggestion``, ``accept_suggestion``; loaded on start by ``_load_suggestions``."""

    def _load_suggestions(self) -> None:
        self.suggested_masks: dict[str, np.ndarray] = {}
        self.suggested_cam: dict[str, int] = {}
        path = self.session_dir / SUGGESTED_DIR / "selection.json"
        if not path.exists():
            return
        try:
            sel = load_selection(path, check_masks=False)
        except UserError as exc:
            self.load_problems.append(f"suggested masks not loaded: {exc}")
            return
        for it in sel.items:
            if it.index not in self._pos_of or not 0 <= it.cam_class < len(self.class_names):
                self.load_problems.append(f"suggested mask for index '{it.index}': unknown image or class "
                                          f"{it.cam_class}; ignored")
                continue
            try:
                m = read_mask(sel.mask_path(it), expected_hw=self.image_hw, what=f"suggested mask for index '{it.index}'")
            except UserError as exc:
                self.load_problems.append(str(exc))
                continue
            self.suggested_masks[it.index] = m
            self.suggested_cam[it.index] = int(it.cam_class)

    def suggestion(self, index: str | None = None) -> np.ndarray | None:
        """The suggested mask of ``index`` (default: current) if it would add pixels, else None."""
        idx = self.current if index is None else index
        m = self.suggested_masks.get(idx)
        if m is None or not ((m > 0) & (self.mask(idx) == 0)).any():
            return None
        return m

    def accept_suggestion(self) -> int:
        """Y: adds the current image's suggested mask to its mask (one undo step).

        An image without a mask takes the suggestion's ``cam_class``.

        Returns:
            The number of pixels added.

        Raises:
            UserError: no suggestion (or nothing new in it), or the mask is hidden.
        """
        self.end_stroke()
        idx = self.current
        sug = self.suggestion(idx)
        if sug is None:
            raise UserError(f"no suggested mask adds anything to '{idx}'")
        if not self.show_mask:
            raise UserError("the mask is hidden, so painting is off: press M to show it")
        had_mask = self.has_mask(idx)
        m = self._editable(idx)
        add = (sug > 0) & (m == 0)
        self._push_undo(idx, m.copy())
        m[add] = 255
        if not had_mask:
            self.cam_class = self.suggested_cam[idx]
        self.cam_classes[idx] = self.cam_class
        self._touch(idx)
        self.save()
        return int(add.sum())
