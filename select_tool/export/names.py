"""Mask file names of the session and export folders: readable and injective.

An index ``train/4/01395`` is stored as ``masks/train/4/01395.png``: its folders are
kept (as the retraining writes propagated masks) and each name part follows the
project's path-name rule (``common.paths.file_stem``: characters other than
``A-Za-z0-9_.-`` and a leading '.' percent-encoded), so no name leaves the ``masks``
folder and distinct indices stay distinct. Folders written before used one flat
stem, ``train%2F4%2F01395.png`` (``legacy_mask_filename``): they are still read
(selections list their mask paths), and an old file is removed when its image's mask
is next written. Files get the mode the umask gives (``common.io``).
"""
from __future__ import annotations

from pathlib import Path

from common.paths import file_stem


def mask_filename(index: str) -> str:
    """``<index>.png`` relative to the masks folder, ``/`` kept as folders (see module docstring)."""
    return "/".join(file_stem(part) for part in str(index).split("/")) + ".png"


def legacy_mask_filename(index: str) -> str:
    """The flat name older folders used: ``train%2F4%2F01395.png``."""
    return file_stem(index) + ".png"


def remove_mask_files(folder: Path, index: str) -> None:
    """Removes ``index``'s mask file (new and legacy name) from ``folder`` and empty parent folders."""
    for name in {mask_filename(index), legacy_mask_filename(index)}:
        path = folder / name
        if path.exists():
            path.unlink()
        parent = path.parent
        while parent != folder and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
