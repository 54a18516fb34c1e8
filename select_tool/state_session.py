"""Autosave and resume of the mask tool's session folder (no Tk).

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes).
The session folder holds ``masks/*.png`` and ``selection.json`` (rewritten
atomically after every edit) and ``session.json`` (view, brush, layers, review marks).
"""
from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError
from select_tool.errors import NotReady
from common.io import atomic_write_json, read_json
from common.images import read_mask, write_mask
from datasets.selection import SelectionItem, load_selection, save_selection
from select_tool.state_editing import MAX_BRUSH, MIN_BRUSH, MODES
from select_tool.state_review import REVIEW_MARKS
from select_tool.strokes import mask_filename

SESSION_VERSION = 2


def default_session_dir(result_path: str | os.PathLike) -> Path:
    """``<folder of result>/<result stem>.select_session``."""
    p = Path(result_path)
    return p.parent / f"{p.stem}.select_session"


class SessionMixin:
    """Session paths, ``save`` (autosave), ``saved``, and resuming from the folder on start."""

    @property
    def selection_path(self) -> Path:
        return self.session_dir / "selection.json"

    @property
    def session_path(self) -> Path:
        return self.session_dir / "session.json"

    def mask_file(self, index: str) -> Path:
        return self.session_dir / "masks" / mask_filename(index)

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
        except NotReady:
            self._pending_view = (kind, value, current)
        except UserError as exc:
            self.load_problems.append(f"filter '{kind}' not restored: {exc}")
        if current in self.visible:
            self.pos = self.visible.index(current)
        self._enter_image()
