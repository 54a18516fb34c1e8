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
``session.json`` keeps the view (filter, current image, brush). Opening the same
result again resumes from that folder; an unreadable or wrongly sized mask there is
reported in ``load_problems`` while the rest loads.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common.errors import UserError
from common.io import atomic_write_json, ensure_dir, read_json
from datasets.selection import SelectionItem, load_selection, read_mask, save_selection, write_mask

MODES = ("brush", "eraser", "rect")
FILTERS = ("all", "misclassified", "true_class", "pred_class", "file", "suggested", "masked")
MIN_BRUSH, MAX_BRUSH = 1, 64
SESSION_VERSION = 1


def default_session_dir(result_path: str | os.PathLike) -> Path:
    """``<folder of result>/<result stem>.select_session``."""
    p = Path(result_path)
    return p.parent / f"{p.stem}.select_session"


def mask_filename(index: str) -> str:
    """``<index>.png`` with characters other than ``A-Za-z0-9_.-`` percent-encoded (injective;
    ``train/cat/img_01`` -> ``train%2Fcat%2Fimg_01.png``)."""
    from urllib.parse import quote

    return quote(str(index), safe="-_.") + ".png"


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
        self._pending_view: tuple | None = None  # filter waiting for predictions/suggestions
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
        self.show_overlay = True
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
        self._apply_pending_view()

    def _apply_pending_view(self) -> None:
        if self._pending_view is None:
            return
        kind, value, current = self._pending_view
        try:
            self.set_filter(kind, value)
        except UserError as exc:
            if "still being computed" in str(exc):
                return
            self.load_problems.append(f"filter '{kind}' not restored: {exc}")
        self._pending_view = None
        if current in self.visible:
            self.go(self.visible.index(current))

    @property
    def predicted(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.argmax(axis=1)

    def set_suggestions(self, ordered: Sequence[str]) -> None:
        """The 'suggested' order (``select_tool.suggest.suggested_order``)."""
        self._suggested = [str(i) for i in ordered]
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
        self.pos = new.index(current) if current in new else 0
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
        self.pos = min(max(int(pos), 0), len(self.visible) - 1)
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

    def save_and_next(self) -> str:
        """N: make sure the current mask is on disk, then go to the next image."""
        self.save()
        return self.next()

    def _enter_image(self) -> None:
        idx = self.current
        self.cam_class = self.cam_classes.get(idx, int(self.labels[self._pos_of[idx]]))

    # ----- view -----------------------------------------------------------------
    def set_cam_class(self, c: int) -> None:
        self.cam_class = self._check_class("cam class", c)
        self._changed("class")

    def set_opacity(self, value: float) -> None:
        self.opacity = float(min(max(value, 0.0), 1.0))
        self._changed("view")

    def toggle_overlay(self) -> bool:
        self.show_overlay = not self.show_overlay
        self._changed("view")
        return self.show_overlay

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise UserError(f"unknown mode '{mode}' (valid: {', '.join(MODES)})")
        self.end_stroke()
        self.mode = mode
        self._changed("tool")

    def change_brush_size(self, delta: int) -> int:
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

    def _push_undo(self, index: str, before: np.ndarray) -> None:
        stack = self._undo.setdefault(index, [])
        stack.append(before)
        del stack[:-self.undo_depth]
        self._redo[index] = []

    # strokes (brush / eraser / rectangle) -- begin, extend*, end
    def begin_stroke(self, row: float, col: float):
        """Mouse down at ``(row, col)``: brush/eraser paints a dot; rect mode anchors a corner."""
        self.end_stroke()
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
        self.dirty.add(s.index)
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
        self.dirty.add(idx)
        self.save()
        return True

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
        self.dirty.add(idx)
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
            "show_overlay": self.show_overlay,
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
            try:
                data = read_json(self.session_path, what="session")
                self._restore_view(data)
            except (UserError, KeyError, TypeError, ValueError) as exc:
                self.load_problems.append(f"session view '{self.session_path}' not restored: {exc}")
        else:
            self._enter_image()

    def _restore_view(self, data: dict) -> None:
        self.brush_size = int(min(max(int(data.get("brush_size", self.brush_size)), MIN_BRUSH), MAX_BRUSH))
        if data.get("mode") in MODES:
            self.mode = data["mode"]
        self.opacity = float(min(max(float(data.get("opacity", self.opacity)), 0.0), 1.0))
        self.show_overlay = bool(data.get("show_overlay", True))
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
    def export(self, out_dir: str | os.PathLike, heldout_fraction: float = 0.0, seed: int = 0) -> tuple[Path, Path | None]:
        """Writes the final selection: ``out_dir/selection.json`` + ``out_dir/masks/*.png``.

        Args:
            out_dir: output folder (created; must be writable).
            heldout_fraction: share of the masked images written instead to
                ``out_dir/heldout_selection.json`` (deterministic given ``seed``), e.g.
                to check that feedback generalises to masks the retraining never saw.
            seed: seed of the held-out draw.

        Returns:
            ``(selection path, held-out path or None)``.

        Raises:
            UserError: nothing to export, folder not writable, bad fraction.
        """
        self.end_stroke()
        if not 0.0 <= heldout_fraction < 1.0:
            raise UserError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
        out_dir = Path(out_dir)
        items = self._items()
        if not items:
            raise UserError("nothing to export: no image has a mask yet")
        ensure_dir(out_dir)
        ensure_dir(out_dir / "masks")
        for it in items:
            write_mask(out_dir / it.mask, self.masks[it.index])
        held: list[SelectionItem] = []
        n_held = int(round(heldout_fraction * len(items)))
        if n_held:
            rng = np.random.default_rng(seed)
            pick = set(rng.choice(len(items), size=n_held, replace=False).tolist())
            held = [it for k, it in enumerate(items) if k in pick]
            items = [it for k, it in enumerate(items) if k not in pick]
        rel = self._train_result_rel(out_dir)
        sel_path = save_selection(out_dir / "selection.json", rel, items)
        held_path = save_selection(out_dir / "heldout_selection.json", rel, held) if held else None
        return sel_path, held_path

    # ----- status ---------------------------------------------------------------
    def status_text(self) -> str:
        """``train_00017 · 3/120 · brush 5 px · saved`` for the status line."""
        if self.last_save_error:
            saved = "NOT SAVED: " + self.last_save_error
        elif self.dirty or self._stroke is not None:
            saved = "unsaved"
        else:
            saved = "saved"
        n_masked = sum(1 for i in self.indices if self.has_mask(i))
        return (f"{self.current} · {self.pos + 1}/{len(self.visible)} ({self.filter_kind}) · "
                f"{self.mode} {self.brush_size} px · {n_masked} masked · {saved}")

    def _changed(self, what: str) -> None:
        if self.on_change is not None:
            self.on_change(what)
