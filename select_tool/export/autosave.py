"""Autosave and resume of the mask tool's session folder (no Tk).

The session folder holds ``masks/**.png`` and ``selection.json`` (rewritten
atomically after every edit) and ``session.json`` (view, brush, layers, review marks,
current image and filter). ``SessionStore`` only reads and writes these files; what
they mean is ``select_tool.state.selection.SelectionState``'s business.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.images import read_mask, write_mask
from common.io import atomic_write_json, ensure_dir, read_json
from datasets.selection import SelectionItem, load_selection, save_selection
from select_tool.export.names import mask_filename, remove_mask_files

SESSION_VERSION = 3


def default_session_dir(result_path: str | os.PathLike) -> Path:
    """``<folder of result>/<result stem>.select_session``."""
    p = Path(result_path)
    return p.parent / f"{p.stem}.select_session"


def relative_to(target: Path | None, folder: Path) -> str:
    """``target`` relative to ``folder`` (as selections name their train result), "" for None."""
    if target is None:
        return ""
    try:
        return os.path.relpath(Path(target).resolve(), Path(folder).resolve())
    except ValueError:  # another drive (Windows)
        return str(Path(target).resolve())


class SessionStore:
    """The files of one session folder (created; must be writable)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        ensure_dir(self.folder)
        ensure_dir(self.folder / "masks")

    @property
    def selection_path(self) -> Path:
        return self.folder / "selection.json"

    @property
    def session_path(self) -> Path:
        return self.folder / "session.json"

    def mask_file(self, index: str) -> Path:
        return self.folder / "masks" / mask_filename(index)

    def write_masks(self, masks: dict[str, np.ndarray | None]) -> None:
        """Writes each mask (None or empty: removes its file, also under an older name)."""
        for idx in sorted(masks):
            m = masks[idx]
            remove_mask_files(self.folder / "masks", idx)
            if m is not None and m.any():
                write_mask(self.mask_file(idx), m)

    def write_selection(self, train_result: Path | None, items: list[SelectionItem]) -> None:
        save_selection(self.selection_path, relative_to(train_result, self.folder), items)

    def write_view(self, data: dict, *, raise_errors: bool = False) -> None:
        """Writes ``session.json``; a failure is raised only with ``raise_errors``
        (the view is a convenience, the masks are the work). Written on every image switch,
        so without an fsync (8 ms, more when the disk is busy); the rename keeps it whole."""
        try:
            atomic_write_json(self.session_path, {"version": SESSION_VERSION, **data}, sync=False)
        except (UserError, OSError):
            if raise_errors:
                raise

    def read_masks(self, *, image_hw, known, num_classes: int) -> tuple[list[tuple[str, np.ndarray, int, str]], list[str]]:
        """``([(index, mask, cam_class, note)], problems)`` of the saved selection (empty if none)."""
        out, problems = [], []
        if not self.selection_path.exists():
            return out, problems
        sel = load_selection(self.selection_path, check_masks=False)
        for it in sel.items:
            if not known(it.index):
                problems.append(f"session mask for index '{it.index}': not among the listed images; ignored")
                continue
            if it.cam_class >= num_classes:
                problems.append(f"session mask for index '{it.index}': cam_class {it.cam_class} out of range; ignored")
                continue
            try:
                m = read_mask(sel.mask_path(it), expected_hw=image_hw, what=f"session mask for index '{it.index}'")
            except UserError as exc:
                problems.append(str(exc))
                continue
            out.append((it.index, m, it.cam_class, it.note))
        return out, problems

    def read_view(self) -> dict | None:
        """The saved ``session.json`` as a dict, None if there is none.

        Raises:
            UserError: unreadable file.
        """
        if not self.session_path.exists():
            return None
        data = read_json(self.session_path, what="session")
        if not isinstance(data, dict):
            raise UserError(f"session '{self.session_path}' is not a JSON object")
        return data
