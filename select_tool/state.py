"""The mask-selection tool's state: a plain class with no Tk (thesis §3.2.3, issue 5).

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
from common.io import atomic_write_json, ensure_dir, read_json
from datasets.selection import SelectionItem, load_selection, read_mask, save_selection, write_mask
from select_tool.exporter import item_digest, mask_digest, read_snapshot, write_export
from select_tool.strokes import mask_filename, paint_segment, rect_pixels  # noqa: F401 (re-exported)

MODES = ("brush", "eraser", "rect")
FILTERS = ("all", "misclassified", "true_class", "pred_class", "file", "suggested", "masked")
MIN_BRUSH, MAX_BRUSH = 1, 64
SESSION_VERSION = 2
REVIEW_MARKS = ("reviewed", "skipped")
BIG_BRUSH_STEP = 5


def default_session_dir(result_path: str | os.PathLike) -> Path:
    """``<folder of result>/<result stem>.select_session``."""
    p = Path(result_path)
    return p.parent / f"{p.stem}.select_session"


def read_index_file(path: str | os.PathLike, known: set[str]) -> list[str]:
    """Indices listed one per line in a text file (blank lines and ``#`` comments ignored).

    Raises:
        UserError: missing file, or an index that is not in the list (names line and value).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"index file '{path}' does not exist")
    out, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text not in known:
            raise UserError(f"index file '{path}' line {number}: index '{text}' is not among the listed images")
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


@dataclasses.dataclass
class _Stroke:
    index: str
    before: np.ndarray
    last: tuple[float, float]
    value: int
    rect_start: tuple[float, float] | None = None


class SelectionState:
    """List, filters, current image, masks, brush, undo/redo, autosave and export.

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

    # ----- paths ----------------------------------------------------------------
    @property
    def selection_path(self) -> Path:
        return self.session_dir / "selection.json"

    @property
    def session_path(self) -> Path:
        return self.session_dir / "session.json"

    def mask_file(self, index: str) -> Path:
        return self.session_dir / "masks" / mask_filename(index)

    # ----- predictions and list -------------------------------------------------
    def set_predictions(self, probs: np.ndarray) -> None:
        """Predicted probabilities ``[N, C]`` in the order of ``indices``."""
        probs = np.asarray(probs, np.float32)
        if probs.shape != (len(self.indices), len(self.class_names)):
            raise ValueError(f"probs has shape {probs.shape}, expected {(len(self.indices), len(self.class_names))}")
        self.probs = probs
        if not self._cam_explicit and self.current not in self.cam_classes:
            self.cam_class = self._default_cam_class(self.current)
        self._apply_pending_view()

    def _apply_pending_view(self) -> None:
        """Applies a filter that waited for predictions/suggestions, without surprising the expert:
        one the expert chose is applied; one from the last session only if the expert has
        not moved on since the start (else a notice says so)."""
        moved = self._user_moved
        if self._pending_user is not None:
            kind, value = self._pending_user
            try:
                self.set_filter(kind, value)
            except UserError as exc:
                if "still being computed" in str(exc):
                    return
                self.notices.append(f"filter '{kind}' not applied: {exc}")
            else:
                self.notices.append(f"filter '{kind}' applied: the predictions are ready")
            self._pending_user = self._pending_view = None
            self._user_moved = moved
            return
        if self._pending_view is not None:
            kind, value, current = self._pending_view
            if moved:
                self._pending_view = None
                self.notices.append(f"last session's filter '{kind}' not restored because you moved on; "
                                    f"choose it under 'Show'")
                return
            try:
                self.set_filter(kind, value)
            except UserError as exc:
                if "still being computed" in str(exc):
                    return
                self.load_problems.append(f"filter '{kind}' not restored: {exc}")
            self._pending_view = None
            if current in self.visible:
                self.go(self.visible.index(current))
            self._user_moved = moved
            return
        if self._fresh and not moved and self._suggested and self.filter_kind == "all":
            self.set_filter("suggested")
            self.go(0)
            self._fresh = False
            self._user_moved = False
            self.notices.append(f"showing the {len(self.visible)} suggested (misclassified) images first; "
                                f"'Show' lists the others")

    def request_filter(self, kind: str, value=None) -> bool:
        """The expert chose a filter: applied now, or as soon as the predictions it needs are ready.

        Returns:
            True if applied now; False if it waits (``pending_filter`` names it).

        Raises:
            UserError: as ``set_filter`` for anything but "not computed yet".
        """
        try:
            self.set_filter(kind, value)
        except UserError as exc:
            if "still being computed" not in str(exc):
                raise
            self._pending_user = (kind, value)
            self._pending_view = None
            self._changed("list")
            return False
        self._pending_user = None
        return True

    def start_filter(self, kind: str, value=None) -> None:
        """The list to start on (command line): overrides the last session's and the default."""
        self._fresh = False
        self._pending_view = None
        self.request_filter(kind, value)
        self._user_moved = False

    @property
    def pending_filter(self) -> str | None:
        """The filter waiting for predictions (chosen by the expert or from the last session)."""
        pend = self._pending_user or self._pending_view
        return None if pend is None else str(pend[0])

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    @property
    def predicted(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.argmax(axis=1)

    def set_suggestions(self, ordered: Sequence) -> None:
        """The 'suggested' order: indices, or ``(index, score or None)`` pairs as
        ``select_tool.suggest.suggested_order`` returns them. Set once per session, so the
        order stays stable while the expert works through it."""
        self._suggested, self.suggest_scores = [], {}
        for entry in ordered:
            idx, score = (entry, None) if isinstance(entry, str) else (str(entry[0]), entry[1])
            self._suggested.append(idx)
            self.suggest_scores[idx] = None if score is None else float(score)
        self._apply_pending_view()

    def _need_predictions(self, kind: str) -> np.ndarray:
        if self.probs is None:
            raise UserError(f"filter '{kind}' needs the predictions, which are still being computed; try again shortly")
        return self.predicted

    def _check_class(self, kind: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < len(self.class_names):
            raise UserError(f"filter '{kind}' needs a class id in 0..{len(self.class_names) - 1}, got {value!r}")
        return int(value)

    def set_filter(self, kind: str, value=None) -> list[str]:
        """Restricts the list; keeps the current image if it is still listed.

        Args:
            kind: ``all``, ``misclassified``, ``true_class`` (value = class id),
                ``pred_class`` (value = class id), ``file`` (value = path of a text file
                with one index per line), ``suggested``, ``masked`` (images with a mask).

        Returns:
            The visible indices. An empty result keeps the previous list and raises.

        Raises:
            UserError: unknown kind, bad value, predictions not ready, empty result.
        """
        if kind not in FILTERS:
            raise UserError(f"unknown filter '{kind}' (valid: {', '.join(FILTERS)})")
        idx = self.indices
        if kind == "all":
            new = list(idx)
        elif kind == "misclassified":
            pred = self._need_predictions(kind)
            new = [i for i, p, y in zip(idx, pred, self.labels) if p != y]
        elif kind == "true_class":
            c = self._check_class(kind, value)
            new = [i for i, y in zip(idx, self.labels) if y == c]
        elif kind == "pred_class":
            c = self._check_class(kind, value)
            pred = self._need_predictions(kind)
            new = [i for i, p in zip(idx, pred) if p == c]
        elif kind == "file":
            new = read_index_file(value, set(idx))
            value = str(value)
        elif kind == "suggested":
            if self._suggested is None:
                raise UserError("the suggested order needs the CAMs, which are still being computed; try again shortly")
            new = list(self._suggested)
        else:  # masked
            new = [i for i in idx if self.has_mask(i)]
        if not new:
            raise UserError(f"filter '{kind}'{'' if value is None else ' ' + repr(value)} lists no image")
        current = self.current if self.visible else None
        self.visible = new
        self.filter_kind, self.filter_value = kind, value
        self._pending_user = None
        self._user_moved = True
        if current in new:
            self.pos = new.index(current)
        else:
            self.pos = 0
            self._enter_image()
        self._save_session()
        self._changed("list")
        return new

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

    # ----- review ---------------------------------------------------------------
    def mark(self, status: str | None, index: str | None = None) -> None:
        """Marks an image ``reviewed`` or ``skipped`` (None removes the mark); saved with the session."""
        if status is not None and status not in REVIEW_MARKS:
            raise UserError(f"unknown review mark '{status}' (valid: {', '.join(REVIEW_MARKS)})")
        idx = self.current if index is None else index
        if status is None:
            self.review.pop(idx, None)
        else:
            self.review[idx] = status
        self._save_session()
        self._changed("review")

    def next_unreviewed(self) -> str | None:
        """Goes to the next listed image without a mark (wrapping); None (and stays) if all are marked."""
        n = len(self.visible)
        for step in range(1, n + 1):
            k = (self.pos + step) % n
            if self.visible[k] not in self.review:
                self.go(k)
                return self.current
        self.end_stroke()
        self.notices.append(f"all {n} listed images are reviewed or skipped")
        self._changed("review")
        return None

    def review_and_next(self) -> str | None:
        """N: the current image is done (mask, if any, is autosaved); on to the next unreviewed one."""
        self.end_stroke()
        self.mark("reviewed")
        return self.next_unreviewed()

    def skip_and_next(self) -> str | None:
        """S: not worth a mask now; on to the next unreviewed image."""
        self.end_stroke()
        self.mark("skipped")
        return self.next_unreviewed()

    def progress(self) -> tuple[int, int, int, int]:
        """``(reviewed, skipped, masked, listed)`` for the current list."""
        rev = sum(1 for i in self.visible if self.review.get(i) == "reviewed")
        skip = sum(1 for i in self.visible if self.review.get(i) == "skipped")
        masked = sum(1 for i in self.visible if i in self.masks and self.has_mask(i))
        return rev, skip, masked, len(self.visible)

    # ----- view -----------------------------------------------------------------
    def set_cam_class(self, c: int) -> None:
        self.cam_class = self._check_class("cam class", c)
        self._cam_explicit = True
        self._changed("class")

    def toggle_true_pred(self) -> int:
        """T: switches the CAM between the true and the predicted class."""
        y = self.current_label
        if self.probs is None:
            raise UserError("the predicted class is still being computed; try again shortly")
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
            raise UserError("the CAM of this image is still being computed; try again shortly")
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

    # ----- persistence ----------------------------------------------------------
    @property
    def saved(self) -> bool:
        return not self.dirty and self.last_save_error is None

    def _items(self, mask_dir_rel: str = "masks") -> list[SelectionItem]:
        return [
            SelectionItem(index=i, mask=f"{mask_dir_rel}/{mask_filename(i)}", cam_class=int(self.cam_classes.get(i, self.labels[self._pos_of[i]])),
                          note=self.notes.get(i, ""))
            for i in self.indices if self.has_mask(i)
        ]

    def _train_result_rel(self, folder: Path) -> str:
        if self.train_result is None:
            return ""
        try:
            return os.path.relpath(self.train_result.resolve(), folder.resolve())
        except ValueError:  # another drive (Windows)
            return str(self.train_result.resolve())

    def save(self) -> bool:
        """Autosave: rewrites the dirty masks and the session selection atomically.

        Returns True on success; on failure keeps the changes in memory (dirty),
        records ``last_save_error`` and raises the UserError.
        """
        try:
            for idx in sorted(self.dirty):
                path = self.mask_file(idx)
                if self.has_mask(idx):
                    write_mask(path, self.masks[idx])
                elif path.exists():
                    path.unlink()
            save_selection(self.selection_path, self._train_result_rel(self.session_dir), self._items())
            self._save_session(raise_errors=True)
        except (UserError, OSError) as exc:
            self.last_save_error = f"autosave to '{self.session_dir}' failed: {exc}"
            self._changed("saved")
            raise UserError(self.last_save_error) from exc
        self.dirty.clear()
        self.last_save_error = None
        self._changed("saved")
        return True

    def _save_session(self, raise_errors: bool = False) -> None:
        data = {
            "version": SESSION_VERSION,
            "train_result": self._train_result_rel(self.session_dir),
            "current": self.current,
            "filter": {"kind": self.filter_kind, "value": self.filter_value},
            "brush_size": self.brush_size,
            "mode": self.mode,
            "opacity": self.opacity,
            "mask_opacity": self.mask_opacity,
            "show_cam": self.show_cam,
            "show_mask": self.show_mask,
            "side_by_side": self.side_by_side,
            "common_scale": self.common_scale,
            "cam_threshold": self.cam_threshold,
            "review": {i: self.review[i] for i in self.indices if i in self.review},
        }
        try:
            atomic_write_json(self.session_path, data)
        except (UserError, OSError):
            if raise_errors:
                raise

    def _resume(self) -> None:
        """Loads masks and view from the session folder, if any (problems -> ``load_problems``)."""
        if self.selection_path.exists():
            sel = load_selection(self.selection_path, check_masks=False)
            for it in sel.items:
                if it.index not in self._pos_of:
                    self.load_problems.append(f"session mask for index '{it.index}': not among the listed images; ignored")
                    continue
                if it.cam_class >= len(self.class_names):
                    self.load_problems.append(f"session mask for index '{it.index}': cam_class {it.cam_class} out of range; ignored")
                    continue
                try:
                    m = read_mask(sel.mask_path(it), expected_hw=self.image_hw, what=f"session mask for index '{it.index}'")
                except UserError as exc:
                    self.load_problems.append(str(exc))
                    continue
                self.masks[it.index] = m.copy()
                self.cam_classes[it.index] = it.cam_class
                self.notes[it.index] = it.note
        if self.session_path.exists():
            self._fresh = False
            try:
                data = read_json(self.session_path, what="session")
                self._restore_view(data)
            except (UserError, KeyError, TypeError, ValueError, AttributeError) as exc:
                self.load_problems.append(f"session view '{self.session_path}' not restored: {exc}")
        else:
            self._enter_image()
        self._user_moved = False

    def _restore_view(self, data: dict) -> None:
        self.brush_size = int(min(max(int(data.get("brush_size", self.brush_size)), MIN_BRUSH), MAX_BRUSH))
        if data.get("mode") in MODES:
            self.mode = data["mode"]
        self.opacity = float(min(max(float(data.get("opacity", self.opacity)), 0.0), 1.0))
        self.mask_opacity = float(min(max(float(data.get("mask_opacity", self.mask_opacity)), 0.05), 1.0))
        self.cam_threshold = float(min(max(float(data.get("cam_threshold", self.cam_threshold)), 0.01), 1.0))
        for flag in ("show_cam", "side_by_side", "common_scale"):
            setattr(self, flag, bool(data.get(flag, getattr(self, flag))))
        self.show_mask = True  # never start with painting off
        review = data.get("review") or {}
        bad = [i for i, v in review.items() if i not in self._pos_of or v not in REVIEW_MARKS]
        if bad:
            self.load_problems.append(f"session review marks: {len(bad)} unknown image(s) or mark(s) ignored, "
                                      f"e.g. {bad[0]!r}")
        self.review = {i: v for i, v in review.items() if i in self._pos_of and v in REVIEW_MARKS}
        flt = data.get("filter") or {}
        kind, value = flt.get("kind", "all"), flt.get("value")
        current = data.get("current")
        if current in self.visible:
            self.pos = self.visible.index(current)  # first, so that set_filter keeps it
        try:
            if kind != "all":
                self.set_filter(kind, value)
        except UserError as exc:
            if "still being computed" in str(exc):
                self._pending_view = (kind, value, current)
            else:
                self.load_problems.append(f"filter '{kind}' not restored: {exc}")
        if current in self.visible:
            self.pos = self.visible.index(current)
        self._enter_image()

    # ----- export ---------------------------------------------------------------
    def set_export_dir(self, out_dir: str | os.PathLike) -> None:
        """Where ``export`` writes; reads what it holds now to count unexported changes."""
        self.out_dir = Path(out_dir)
        self._exported, problems = read_snapshot(self.out_dir, self.image_hw)
        self.load_problems.extend(problems)
        self._changed("export")

    def _digest(self, index: str) -> str:
        h = self._digests.get(index)
        if h is None:
            h = self._digests[index] = mask_digest(self.masks[index])
        return item_digest(h, int(self.cam_classes.get(index, self.labels[self._pos_of[index]])),
                           self.notes.get(index, ""))

    def export_diff(self) -> dict[str, list[str]]:
        """What an export would change: ``{"added": [...], "changed": [...], "removed": [...]}``."""
        now = {i: self._digest(i) for i in self.indices if i in self.masks and self.has_mask(i)}
        return {"added": sorted(i for i in now if i not in self._exported),
                "changed": sorted(i for i in now if i in self._exported and now[i] != self._exported[i]),
                "removed": sorted(i for i in self._exported if i not in now)}

    def unexported_changes(self) -> int:
        """Images whose mask, CAM class or note differs from the export folder."""
        return sum(len(v) for v in self.export_diff().values())

    def export(self, out_dir: str | os.PathLike | None = None, heldout_fraction: float = 0.0,
               seed: int = 0) -> tuple[Path, Path | None]:
        """Writes the final selection: ``out_dir/selection.json`` + ``out_dir/masks/*.png``.

        The folder is rewritten so that it holds exactly the current masks: a mask
        cleared since the last export disappears from the JSON *and* the folder
        (``select_tool.exporter.write_export``). With every mask cleared, an earlier
        export becomes an empty selection.

        Args:
            out_dir: output folder (created; must be writable); default ``set_export_dir``'s.
            heldout_fraction: share of the masked images written instead to
                ``out_dir/heldout_selection.json`` (deterministic given ``seed``), e.g.
                to check that feedback generalises to masks the retraining never saw.
            seed: seed of the held-out draw.

        Returns:
            ``(selection path, held-out path or None)``.

        Raises:
            UserError: nothing to export, folder not writable, bad fraction. The
                earlier export is then unchanged.
        """
        self.end_stroke()
        if not 0.0 <= heldout_fraction < 1.0:
            raise UserError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
        if out_dir is None:
            if self.out_dir is None:
                raise ValueError("export() needs out_dir (or set_export_dir first)")
            out_dir = self.out_dir
        out_dir = Path(out_dir)
        if self.out_dir is None or out_dir.resolve() != self.out_dir.resolve():
            self.out_dir = out_dir
            self._exported, _ = read_snapshot(out_dir, self.image_hw)
        items = self._items()
        if not items and not self._exported:
            raise UserError("nothing to export: no image has a mask yet")
        held: list[SelectionItem] = []
        n_held = int(round(heldout_fraction * len(items)))
        if n_held:
            rng = np.random.default_rng(seed)
            pick = set(rng.choice(len(items), size=n_held, replace=False).tolist())
            held = [it for k, it in enumerate(items) if k in pick]
            items = [it for k, it in enumerate(items) if k not in pick]
        sel_path, held_path = write_export(out_dir, self._train_result_rel(out_dir), items, held, self.masks)
        self._exported = {it.index: self._digest(it.index) for it in items + held}
        self._changed("export")
        return sel_path, held_path

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
