"""Mask file names of the session and export folders: readable, injective, world-readable.

An index ``train/4/01395`` is stored as ``masks/train/4/01395.png`` (its folders kept,
as the retraining writes propagated masks); characters other than ``A-Za-z0-9_.-`` in a
name part are percent-encoded, and a part ``.``/``..`` is encoded too, so that no name
leaves the ``masks`` folder. Folders written before used ``train%2F4%2F01395.png``
(``legacy_mask_filename``): they are still read (selections list their mask paths) and
an old file is removed when its image's mask is next written.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from common.images import write_mask

#: permissions of written mask files: readable by everyone, like the other outputs
FILE_MODE = 0o644


def mask_filename(index: str) -> str:
    """``<index>.png`` relative to the masks folder, ``/`` kept as folders (see module docstring)."""
    parts = [quote(p, safe="-_.") for p in str(index).split("/")]
    parts = [p.replace(".", "%2E") if p in (".", "..", "") else p for p in parts]
    return "/".join(parts) + ".png"


def legacy_mask_filename(index: str) -> str:
    """The flat name older folders used: ``train%2F4%2F01395.png``."""
    return quote(str(index), safe="-_.") + ".png"


def write_readable_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """``common.images.write_mask`` (atomic) + mode ``FILE_MODE`` (its temporary file is private)."""
    path = write_mask(path, mask)
    os.chmod(path, FILE_MODE)
    return path


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
