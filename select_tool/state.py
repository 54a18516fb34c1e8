"""The mask-selection tool's state: a plain class with no Tk (thesis §3.2.3).

Everything the window shows and every edit lives here; ``select_tool.main`` only
forwards Tk events to it and draws what it says. Tested without a display in
``tests/test_select_state*.py``.

Coordinates are image pixels ``(row, col)`` as floats with pixel centres at integers
(pixel ``(r, c)`` covers ``[r-0.5, r+0.5] × [c-0.5, c+0.5]``). Masks are ``uint8
[H, W]``, 0 = keep, 255 = irrelevant (``datasets.selection``).

Never lose work: after every completed edit (stroke, rectangle, clear, undo, redo)
the mask PNG and the session's ``selection.json`` are rewritten atomically in the
session folder (by default ``<result stem>.select_session/`` next to the result);
``session.json`` keeps the view (filter, current image, brush, layers) and the review
marks (reviewed / skipped per image). Opening the same result again resumes from that
folder; an unreadable or wrongly sized mask there is reported in ``load_problems``
while the rest loads.

Autosave is not export: ``export`` writes the folder the retraining reads
(``select_tool.exporter``), and ``unexported_changes`` counts the images whose mask or
CAM class differs from what that folder holds.

Class ids are 0-based everywhere (``cam_class`` in the JSON, the filters, the UI).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common.errors import UserError
from common.io import ensure_dir
from select_tool.state_editing import EditingMixin, Stroke
from select_tool.state_export import ExportMixin
from select_tool.state_filters import FilterMixin
from select_tool.state_navigation import NavigationMixin
from select_tool.state_review import ReviewMixin
from select_tool.state_session import SessionMixin
from select_tool.state_suggest import SuggestedMasksMixin


class SelectionState(NavigationMixin, EditingMixin, FilterMixin, ReviewMixin, SessionMixin, ExportMixin,
                     SuggestedMasksMixin):
    """List, filters, current image, masks, brush, undo/redo, autosave and export.

    Navigation and view settings, mask editing (strokes, undo), filters, review
    marks, autosave/resume, export and suggested masks live in the mixins of
    ``select_tool.state_navigation``, ``state_editing``, ``state_filters``,
    ``state_review``, ``state_session``, ``state_export`` and ``state_suggest``;
    they work on the attributes set here.

    Args:
        indices: the images that can be listed (e.g. the train split), in order.
        labels: true class id per index ``[N]``.
        class_names: class names.
        image_hw: ``(H, W)`` of every image and mask.
        session_dir: folder for autosaves (created; must be writable).
        train_result: path of the train result (written into selections).
        probs: optional predicted probabilities ``[N, C]`` (``set_predictions`` later).
        undo_depth: undo steps kept per image (>= 20).
        on_change: optional callback ``(what: str) -> None`` after every change, for the GUI.

    Raises:
        UserError: session folder not writable, or its ``selection.json`` unreadable.
    """

    def __init__(self, *, indices: Sequence[str], labels: Sequence[int], class_names: Sequence[str],
                 image_hw: tuple[int, int], session_dir: str | os.PathLike, train_result: str | os.PathLike = "",
                 probs: np.ndarray | None = None, undo_depth: int = 50,
                 on_change: Callable[[str], None] | None = None):
        if undo_depth < 20:
            raise ValueError(f"undo_depth must be >= 20, got {undo_depth}")
        self.indices = [str(i) for i in indices]
        if not self.indices:
            raise UserError("no images to show (the split is empty)")
        self._pos_of = {idx: k for k, idx in enumerate(self.indices)}
        self.labels = np.asarray(labels, np.int64)
        if self.labels.shape != (len(self.indices),):
            raise ValueError(f"labels has shape {self.labels.shape} for {len(self.indices)} indices")
        self.class_names = list(class_names)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.session_dir = Path(session_dir)
        self.train_result = Path(train_result) if train_result else None
        self.undo_depth = int(undo_depth)
        self.on_change = on_change
        self.probs: np.ndarray | None = None
        self._suggested: list[str] | None = None
        self.suggest_scores: dict[str, float | None] = {}
        self._pending_view: tuple | None = None  # filter of the last session waiting for predictions
        self._pending_user: tuple | None = None  # filter the expert chose before predictions were ready
        self._fresh = True  # no view restored from a session: start on 'suggested' when useful
        self._user_moved = False  # the expert changed image or list since start
        self._cam_explicit = False  # the CAM class of the current image was chosen by the expert
        self.notices: list[str] = []  # messages for the status line (taken by the GUI)
        self.review: dict[str, str] = {}
        self.out_dir: Path | None = None
        self._exported: dict[str, str] = {}
        self._digests: dict[str, str] = {}
        # masks and their CAM class; only images the expert touched are stored
        self.masks: dict[str, np.ndarray] = {}
        self.cam_classes: dict[str, int] = {}
        self.notes: dict[str, str] = {}
        self._undo: dict[str, list[np.ndarray]] = {}
        self._redo: dict[str, list[np.ndarray]] = {}
        self._stroke: Stroke | None = None
        self.dirty: set[str] = set()
        self.last_save_error: str | None = None
        self.load_problems: list[str] = []
        # view
        self.filter_kind = "all"
        self.filter_value: int | str | None = None
        self.visible: list[str] = list(self.indices)
        self.pos = 0
        self.cam_class = int(self.labels[0])
        self.opacity = 0.5
        self.mask_opacity = 0.45
        self.show_cam = True
        self.show_mask = True
        self.side_by_side = True
        self.common_scale = False
        self.cam_threshold = 0.5
        self.mode = "brush"
        self.brush_size = 5
        self._zero = np.zeros(self.image_hw, np.uint8)
        self._zero.setflags(write=False)
        if probs is not None:
            self.set_predictions(probs)
        ensure_dir(self.session_dir)
        ensure_dir(self.session_dir / "masks")
        self._resume()
        self._load_suggestions()

    # ----- status ---------------------------------------------------------------
    def status_text(self) -> str:
        """``train_00017 · 3/120 (all) · 2/120 reviewed · 1 masked · brush 5 px · autosaved · 1 change not exported``."""
        if self.last_save_error:
            saved = "AUTOSAVE FAILED: " + self.last_save_error
        elif self.dirty or self._stroke is not None:
            saved = "not autosaved yet"
        else:
            saved = "autosaved"
        rev, skip, masked, listed = self.progress()
        n = self.unexported_changes()
        exported = (f"{n} change{'s' if n != 1 else ''} not exported" if n
                    else ("all exported" if self._exported else "nothing exported yet"))
        flt = self.filter_kind + (f" → {self.pending_filter} when ready" if self.pending_filter else "")
        return (f"{self.current} · {self.pos + 1}/{listed} ({flt}) · {rev + skip}/{listed} reviewed"
                f"{f' ({skip} skipped)' if skip else ''} · {masked} masked · "
                f"{self.mode} {self.brush_size} px · {saved} · {exported}")

    def _changed(self, what: str) -> None:
        if self.on_change is not None:
            self.on_change(what)
