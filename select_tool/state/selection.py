"""The mask-selection tool's state: a plain class with no Tk (thesis §3.2.3).

Everything the window shows and every edit lives here; ``select_tool.view`` only
forwards Tk events to it and draws what it says. Tested without a display in
``tests/test_select_state*.py``.

``SelectionState`` is composed of parts, each with its own data and interface:

* ``listing`` (``ImageList``): indices, labels, predictions, filters, current image;
* ``book`` (``MaskBook``): masks, CAM classes, undo / redo, the stroke in progress;
* ``view`` (``ViewSettings``): layers, opacities, tool, brush;
* ``edit`` (``Editor``): the editing commands on the current image;
* ``marks`` (``ReviewMarks``), ``suggested`` (``SuggestedMasks``);
* ``store`` (``select_tool.export.autosave.SessionStore``) and ``exports``
  (``select_tool.export.tracker.ExportTracker``): the files.

This class connects them: the CAM class of the current image, autosave after every
completed edit, the session's view, the status line.

Coordinates are image pixels ``(row, col)``, pixel centres at integers; masks are
``uint8 [H, W]``, 0 = keep, 255 = irrelevant (``datasets.selection``); class ids 0-based.

Never lose work: every completed edit is autosaved atomically into the session folder
(default ``<result stem>.select_session/``), which the next start resumes from
(``select_tool.state.resume``; unreadable parts go to ``load_problems``). Autosave is
not export: ``export`` writes the folder the retraining reads.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common.errors import UserError
from datasets.selection import SelectionItem
from select_tool.export.autosave import SessionStore
from select_tool.export.names import mask_filename
from select_tool.export.tracker import ExportTracker
from select_tool.state.editing import Editor
from select_tool.state.errors import NotReady
from select_tool.state.listing import ImageList
from select_tool.state.masks import MaskBook
from select_tool.state.resume import resume
from select_tool.state.review import ReviewMarks
from select_tool.state.suggestions import SuggestedMasks
from select_tool.state.view_settings import ViewSettings


class SelectionState:
    """List, filters, current image, masks, view, review marks, autosave and export.

    Args:
        indices, labels: the images that can be listed, in order, and their true class ids ``[N]``.
        class_names: class names; ``image_hw``: ``(H, W)`` of every image and mask.
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
        self.class_names = list(class_names)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.session_dir = Path(session_dir)
        self.train_result = Path(train_result) if train_result else None
        self.on_change = on_change
        self.load_problems: list[str] = []
        self.last_save_error: str | None = None
        self.book = MaskBook(self.image_hw, undo_depth)
        self.view = ViewSettings()
        self.marks = ReviewMarks()
        self.listing = ImageList(indices=indices, labels=labels, num_classes=len(self.class_names),
                                 is_masked=self.book.has_mask, on_enter=self._enter_image, problems=self.load_problems)
        self.exports = ExportTracker(image_hw=self.image_hw, train_result=self.train_result,
                                     problems=self.load_problems)
        self.cam_class = int(self.listing.labels[0])
        self._cam_explicit = False  # the CAM class of the current image was chosen by the expert
        self.window: tuple[int, int] | None = None  # the window size of the last session
        self.store = SessionStore(self.session_dir)
        self.edit = Editor(book=self.book, view=self.view, current=lambda: self.current,
                           cam_class=lambda: self.cam_class, set_cam_class=self._show_class,
                           autosave=self.save, changed=self._changed)
        if probs is not None:
            self.set_predictions(probs)
        self._resume()
        self.suggested = SuggestedMasks(self.session_dir, known=self.listing.pos_of.__contains__,
                                        num_classes=len(self.class_names), image_hw=self.image_hw)
        self.load_problems.extend(self.suggested.problems)

    # ----- the parts' data, read-only views for the window and the tests ---------------
    indices = property(lambda self: self.listing.indices)
    labels = property(lambda self: self.listing.labels)
    probs = property(lambda self: self.listing.probs)
    predicted = property(lambda self: self.listing.predicted)
    visible = property(lambda self: self.listing.visible)
    pos = property(lambda self: self.listing.pos)
    current = property(lambda self: self.listing.current)
    filter_kind = property(lambda self: self.listing.filter_kind)
    filter_value = property(lambda self: self.listing.filter_value)
    pending_filter = property(lambda self: self.listing.pending_filter)
    suggest_scores = property(lambda self: self.listing.suggest_scores)
    masks = property(lambda self: self.book.masks)
    cam_classes = property(lambda self: self.book.cam_classes)
    review = property(lambda self: self.marks.marks)
    selection_path = property(lambda self: self.store.selection_path)
    session_path = property(lambda self: self.store.session_path)
    out_dir = property(lambda self: self.exports.out_dir)

    @property
    def current_label(self) -> int:
        return self.listing.label(self.current)

    def current_probs(self) -> np.ndarray | None:
        return self.listing.probs_of(self.current)

    def position_of(self, index: str) -> int:
        """Position of ``index`` in ``indices`` (the order of ``labels``/``probs``)."""
        return self.listing.pos_of[index]

    def mask(self, index: str | None = None) -> np.ndarray:
        """The mask of ``index`` (default: current); a read-only zero mask if none."""
        return self.book.mask(self.current if index is None else index)

    def has_mask(self, index: str) -> bool:
        return self.book.has_mask(index)

    def suggestion(self, index: str | None = None) -> np.ndarray | None:
        """The suggested mask of ``index`` (default: current) if it would add pixels, else None."""
        idx = self.current if index is None else index
        return self.suggested.adding(idx, self.book.mask(idx))

    def reload_suggestions(self) -> None:
        """Reads the session's suggested masks again (after a retraining propagated new ones)."""
        self.suggested = SuggestedMasks(self.session_dir, known=self.listing.pos_of.__contains__,
                                        num_classes=len(self.class_names), image_hw=self.image_hw)
        self.load_problems.extend(self.suggested.problems)
        self._changed("view")

    def end_stroke(self) -> bool:
        return self.edit.end_stroke()

    def take_notices(self) -> list[str]:
        return self.listing.take_notices()

    def _changed(self, what: str) -> None:
        if self.on_change is not None:
            self.on_change(what)

    # ----- navigation ---------------------------------------------------------------------
    def _enter_image(self, index: str) -> None:
        self._cam_explicit = False
        self.cam_class = self.book.cam_classes.get(index, self.listing.default_cam_class(index))

    def go(self, pos: int) -> str:
        """Shows the ``pos``-th listed image (clamped); finishes a stroke in progress."""
        self.end_stroke()
        self.listing.go(pos)
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

    def previous_listed(self) -> str | None:
        """The image listed before the current one (None at the top)."""
        return self.visible[self.pos - 1] if self.pos > 0 else None

    # ----- predictions and filters ----------------------------------------------------------
    def set_predictions(self, probs: np.ndarray) -> None:
        """Predicted probabilities ``[N, C]`` in the order of ``indices``."""
        self.listing.set_predictions(probs)
        if not self._cam_explicit and self.current not in self.book.cam_classes:
            self.cam_class = self.listing.default_cam_class(self.current)
        self._changed("list")

    def set_suggestions(self, ordered: Sequence) -> None:
        """The 'suggested' order (see ``ImageList.set_suggestions``)."""
        self.listing.set_suggestions(ordered)
        self._changed("list")

    def set_still_wrong(self, ordered: Sequence) -> None:
        """The 'still wrong' list of the current model (see ``ImageList.set_still_wrong``)."""
        self.listing.set_still_wrong(ordered)
        self._changed("list")

    def set_filter(self, kind: str, value=None) -> list[str]:
        """Restricts the list (see ``ImageList.set_filter``); saved with the session."""
        new = self.listing.set_filter(kind, value)
        self._save_session()
        self._changed("list")
        return new

    def request_filter(self, kind: str, value=None) -> bool:
        """Applies a filter now (True) or as soon as the predictions it needs are ready (False)."""
        applied = self.listing.request_filter(kind, value)
        self._save_session()
        self._changed("list")
        return applied

    def start_filter(self, kind: str, value=None) -> None:
        """The list to start on (command line): overrides the last session's and the default."""
        self.listing.start_filter(kind, value)

    # ----- view -------------------------------------------------------------------------------
    def set_cam_class(self, c: int) -> None:
        self._show_class(self.listing.check_class("cam class", c))
        self._changed("class")

    def _show_class(self, c: int) -> None:
        self.cam_class = int(c)
        self._cam_explicit = True

    def toggle_true_pred(self) -> int:
        """T: switches the CAM between the true and the predicted class."""
        y = self.current_label
        if self.probs is None:
            raise NotReady("the predicted class is still being computed; try again shortly")
        p = int(self.current_probs().argmax())
        self.set_cam_class(p if self.cam_class == y and p != y else y)
        return self.cam_class

    def set_opacity(self, value: float) -> None:
        self.view.set_opacity(value)
        self._changed("view")

    def set_mask_opacity(self, value: float) -> None:
        self.view.set_mask_opacity(value)
        self._changed("view")

    def set_cam_threshold(self, value: float) -> None:
        self.view.set_cam_threshold(value)
        self._changed("view")

    def toggle(self, flag: str) -> bool:
        """Flips a layer flag of ``ViewSettings`` (``show_cam``, ``show_mask``, ...); returns the new value."""
        if flag == "show_mask":
            self.end_stroke()
        value = self.view.toggle(flag)
        self._save_session()
        self._changed("view")
        return value

    # ----- review --------------------------------------------------------------------------------
    def mark(self, status: str | None, index: str | None = None) -> None:
        """Marks an image ``reviewed`` or ``skipped`` (None removes the mark); saved with the session."""
        self.marks.mark(self.current if index is None else index, status)
        self._save_session()
        self._changed("review")

    def next_unreviewed(self) -> str | None:
        """Goes to the next listed image without a mark (wrapping); None (and stays) if all are marked."""
        k = self.marks.next_unmarked(self.visible, self.pos)
        if k is None:
            self.end_stroke()
            self.listing.notices.append(f"all {len(self.visible)} listed images are reviewed or skipped")
            self._changed("review")
            return None
        return self.go(k)

    def review_and_next(self) -> str | None:
        """N: the current image is done (its mask is autosaved); on to the next unreviewed one."""
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
        return self.marks.progress(self.visible, self.book.has_mask)

    # ----- autosave / resume -----------------------------------------------------------------
    @property
    def saved(self) -> bool:
        return not self.book.dirty and self.last_save_error is None

    def _items(self, mask_dir_rel: str = "masks") -> list[SelectionItem]:
        return [SelectionItem(index=i, mask=f"{mask_dir_rel}/{mask_filename(i)}",
                              cam_class=int(self.book.cam_classes.get(i, self.listing.label(i))),
                              note=self.book.notes.get(i, ""))
                for i in self.indices if self.book.has_mask(i)]

    def save(self) -> bool:
        """Autosave: rewrites the dirty masks and the session selection atomically.

        Returns True on success; on failure keeps the changes in memory (dirty),
        records ``last_save_error`` and raises the UserError.
        """
        try:
            self.store.write_masks({i: self.book.masks.get(i) for i in self.book.dirty})
            self.store.write_selection(self.train_result, self._items())
            self._save_session(raise_errors=True)
        except (UserError, OSError) as exc:
            self.last_save_error = f"autosave to '{self.session_dir}' failed: {exc}"
            self._changed("saved")
            raise UserError(self.last_save_error) from exc
        self.book.dirty.clear()
        self.last_save_error = None
        self._changed("saved")
        return True

    def _save_session(self, raise_errors: bool = False) -> None:
        self.store.write_view({
            "train_result": str(self.train_result or ""), "current": self.current,
            "filter": {"kind": self.filter_kind, "value": self.filter_value}, **self.view.to_dict(),
            "review": {i: self.review[i] for i in self.indices if i in self.review},
            "window": list(self.window) if self.window else None,
        }, raise_errors=raise_errors)

    def save_window(self, size: tuple[int, int]) -> None:
        """Remembers the window size for the next start."""
        self.window = (int(size[0]), int(size[1]))
        self._save_session()

    def _resume(self) -> None:
        """Loads masks and view from the session folder, if any (problems -> ``load_problems``)."""
        self.window = resume(self.store, book=self.book, listing=self.listing, view=self.view, marks=self.marks,
                             problems=self.load_problems, enter=self._enter_image)

    # ----- export ----------------------------------------------------------------------------------
    def set_export_dir(self, out_dir: str | os.PathLike) -> None:
        """Where ``export`` writes; reads what it holds now to count unexported changes."""
        self.exports.set_dir(out_dir)
        self._changed("export")

    @property
    def n_exported(self) -> int:
        """Images the export folder holds (as last exported or found on start)."""
        return len(self.exports.exported)

    def _digest(self, index: str) -> str:
        return self.book.digest(index, self.listing.label(index))

    def export_diff(self) -> dict[str, list[str]]:
        """What an export would change: ``{"added": [...], "changed": [...], "removed": [...]}``."""
        return self.exports.diff({i: self._digest(i) for i in self.book.masked(self.indices)})

    def unexported_changes(self) -> int:
        """Images whose mask, CAM class or note differs from the export folder."""
        return sum(len(v) for v in self.export_diff().values())

    def export(self, out_dir: str | os.PathLike | None = None, heldout_fraction: float = 0.0,
               seed: int = 0) -> tuple[Path, Path | None]:
        """Rewrites ``out_dir`` (``selection.json`` + ``masks/``) to hold exactly the current masks
        (``select_tool.export.exporter``); ``heldout_fraction`` of them go to ``heldout_selection.json``
        (drawn with ``seed``). Returns ``(selection path, held-out path or None)``.

        Raises:
            UserError: nothing to export, folder not writable, bad fraction (the earlier export is kept).
        """
        self.end_stroke()
        paths = self.exports.export(out_dir, self._items(), self.book.masks, self._digest,
                                    heldout_fraction=heldout_fraction, seed=seed)
        self._changed("export")
        return paths

    # ----- status ---------------------------------------------------------------------------------
    def status_text(self) -> str:
        """``train_00017 · 3/120 (all) · 2/120 reviewed · 1 masked · brush 5 px · autosaved · 1 change not exported``."""
        if self.last_save_error:
            saved = "AUTOSAVE FAILED: " + self.last_save_error
        elif self.book.dirty or self.book.stroke is not None:
            saved = "not autosaved yet"
        else:
            saved = "autosaved"
        rev, skip, masked, listed = self.progress()
        n = self.unexported_changes()
        exported = (f"{n} change{'s' if n != 1 else ''} not exported" if n
                    else ("all exported" if self.exports.exported else "nothing exported yet"))
        flt = self.filter_kind + (f" → {self.pending_filter} when ready" if self.pending_filter else "")
        return (f"{self.current} · {self.pos + 1}/{listed} ({flt}) · {rev + skip}/{listed} reviewed"
                f"{f' ({skip} skipped)' if skip else ''} · {masked} masked · "
                f"{self.view.mode} {self.view.brush_size} px · {saved} · {exported}")
