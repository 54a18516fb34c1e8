"""Suggested masks (e.g. propagated by the retraining side) that the expert accepts with one key.

If the session folder holds ``suggested_masks/selection.json`` (the selection
format, masks relative to it), each listed mask is shown as an outline on its
image; **Y** adds it to the image's mask as one undo step. Unreadable entries are
reported in ``load_problems`` and skipped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import UserError
from common.images import read_mask
from datasets.selection import load_selection

SUGGESTED_DIR = "suggested_masks"


class SuggestedMasks:
    """The suggested masks of a session folder: ``masks`` and their ``cam`` class per index.

    Args:
        folder: the session folder (suggestions in its ``suggested_masks/``).
        known: ``index -> bool``: the image is listed.
        num_classes, image_hw: to check each entry.
    """

    def __init__(self, folder: Path, *, known: Callable[[str], bool], num_classes: int, image_hw: tuple[int, int]):
        self.masks: dict[str, np.ndarray] = {}
        self.cam: dict[str, int] = {}
        self.problems: list[str] = []
        self.path = Path(folder) / SUGGESTED_DIR / "selection.json"
        if self.path.exists():
            self._load(known, num_classes, image_hw)

    def _load(self, known, num_classes: int, image_hw) -> None:
        path = self.path
        try:
            sel = load_selection(path, check_masks=False)
        except UserError as exc:
            self.problems.append(f"suggested masks not loaded: {exc}")
            return
        for it in sel.items:
            if not known(it.index) or not 0 <= it.cam_class < num_classes:
                self.problems.append(f"suggested mask for index '{it.index}': unknown image or class "
                                          f"{it.cam_class}; ignored")
                continue
            try:
                m = read_mask(sel.mask_path(it), expected_hw=image_hw, what=f"suggested mask for index '{it.index}'")
            except UserError as exc:
                self.problems.append(str(exc))
                continue
            self.masks[it.index] = m
            self.cam[it.index] = int(it.cam_class)

    def adding(self, index: str, mask: np.ndarray) -> np.ndarray | None:
        """The suggested mask of ``index`` if it would add pixels to ``mask``, else None."""
        m = self.masks.get(index)
        if m is None or not ((m > 0) & (mask == 0)).any():
            return None
        return m
