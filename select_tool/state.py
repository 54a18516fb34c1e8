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

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common.errors import UserError
from select_tool.errors import NotReady
from common.io import ensure_dir
from select_tool.state_export import ExportMixin
from select_tool.state_filters import FILTERS, FilterMixin, read_index_file  # noqa: F401 (re-exported)
from select_tool.state_review import REVIEW_MARKS, ReviewMixin  # noqa: F401 (re-exported)
from select_tool.state_session import MAX_BRUSH, MIN_BRUSH, MODES, SessionMixin
from select_tool.state_suggest import SuggestedMasksMixin
from select_tool.strokes import mask_filename, paint_segment, rect_pixels  # noqa: F401 (re-exported)

BIG_BRUSH_STEP = 5


def default_session_dir(result_path: str | os.PathLike) -> Path:
    """``<folder of result>/<result stem>.select_session``."""
    p = Path(result_path)
    return p.parent / f"{p.stem}.select_session"


@dataclasses.dataclass
class _Stroke:
    index: str
    before: np.ndarray
    last: tuple[float, float]
    value: int
    rect_start: tuple[float, float] | None = None


class SelectionState(FilterMixin, ReviewMixin, SessionMixin, ExportMixin, SuggestedMasksMixin):
    """List, filters, current image, masks, brush, undo/redo, autosave and export.

    The filter, review, autosave/resume, export and suggested-mask parts live in the
    mixins of ``select_tool.state_filters``, ``state_review``, ``state_session``,
    ``state_export`` and ``state_suggest``; they work on the attributes set here.

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
        self._stroke: _Stroke | None = None
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

    # ----- paths ----------------------------------------------------------------
    @property
    def selection_path(self) -> Path:
        return self.session_dir / "selection.json"

    @property
    def session_path(self) -> Path:
        return self.session_dir / "session.json"

    def mask_file(self, index: str) -> Path:
        return self.session_dir / "masks" / mask_filename(index)

    # ----- navigation -----------------------------------------------------------
    @property
    def current(self) -> str:
        return self.visible[self.pos]

    @property
    def current_label(self) -> int:
        return int(self.labels[self._pos_of[self.current]])

    def current_probs(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs[self._pos_of[self.current]]

    def position_of(self, index: str) -> int:
        """Position of ``index`` in ``indices`` (the order of ``labels``/``probs``)."""
        return self._pos_of[index]

    def go(self, pos: int) -> str:
        """Shows the ``pos``-th listed image (clamped); finishes a stroke in progress."""
        self.end_stroke()
        new = min(max(int(pos), 0), len(self.visible) - 1)
        self._user_moved = True
        if new != self.pos:
            self.pos = new
            self._enter_image()
        self._save_session()
        self._changed("image")
        return self.current

    def goto(self, index: str) -> str:
        if index not in self.visible:
            raise UserError(f"index '{index}' is not in the current list (filter '{self.filter_kind}')")
        return self.go(self.visible.index(index))

    def next(self) -> str:
        return self.go(self.pos + 1)

    def prev(self) -> str:
        return self.go(self.pos - 1)

    def _enter_image(self) -> None:
        idx = self.current
        self._cam_explicit = False
        self.cam_class = self.cam_classes.get(idx, self._default_cam_class(idx))

    def _default_cam_class(self, index: str) -> int:
        """The predicted class for a misclassified image (where a shortcut's evidence shows),
        else (and before predictions) the true class."""
        pos = self._pos_of[index]
        if self.probs is not None:
            return int(self.probs[pos].argmax())
        return int(self.labels[pos])

    # ----- view -----------------------------------------------------------------
    def set_cam_class(self, c: int) -> None:
        self.cam_class = self._check_class("cam class", c)
        self._cam_explicit = True
        self._changed("class")

    def toggle_true_pred(self) -> int:
        """T: switches the CAM between the true and the predicted class."""
        y = self.current_label
        if self.probs is None:
            raise NotReady("the predicted class is still being computed; try again shortly")
        p = int(self.probs[self._pos_of[self.current]].argmax())
        self.set_cam_class(p if self.cam_class == y and p != y else y)
        return self.cam_class

    def set_opacity(self, value: float) -> None:
        self.opacity = float(min(max(value, 0.0), 1.0))
        self._changed("view")

    def set_mask_opacity(self, value: float) -> None:
        self.mask_opacity = float(min(max(value, 0.05), 1.0))
        self._changed("view")

    def toggle(self, layer: str) -> bool:
        """Flips ``show_cam``, ``show_mask``, ``side_by_side`` or ``common_scale``; returns the new value."""
        if layer not in ("show_cam", "show_mask", "side_by_side", "common_scale"):
            raise ValueError(f"unknown view flag '{layer}'")
        if layer == "show_mask":
            self.end_stroke()
        setattr(self, layer, not getattr(self, layer))
        self._save_session()
        self._changed("view")
        return getattr(self, layer)

    def set_cam_threshold(self, value: float) -> None:
        self.cam_threshold = float(min(max(value, 0.01), 1.0))
        self._changed("view")

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

    # ----- masks ----------------------------------------------------------------
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
        self._stroke = _Stroke(idx, m.copy(), (row, col), value)
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

    @property
    def stroke_in_progress(self) -> bool:
        return self._stroke is not None

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
