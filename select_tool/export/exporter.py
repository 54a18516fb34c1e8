"""Export that cannot go stale: the export folder always matches its ``selection.json``.

``write_export`` rewrites ``OUT/selection.json`` (+ ``heldout_selection.json``) and
``OUT/masks/**.png`` in three steps:

1. every mask and JSON file is written into a staging folder ``OUT/.export-staging``
   (a read-only folder or a full disk fails here, before anything exported is touched);
2. the staged PNGs are renamed into ``OUT/masks`` and then the JSON files over the
   old ones (renames in one folder: atomic, no copying);
3. PNGs in ``OUT/masks`` that no selection lists any more, and a held-out file the
   new export does not have, are removed.

So a listed mask always exists, and after the export no PNG is left without an entry.

What was exported is remembered as a *snapshot* ``{index: digest}`` (mask pixels +
``cam_class`` + note); ``SelectionState`` compares it with the current masks to show
"N changes not exported". ``read_snapshot`` rebuilds it from the folder on start.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.images import read_mask, write_mask
from common.io import ensure_dir
from common.paths import resolve_relative
from datasets.selection import SelectionItem, load_selection, result_provenance, save_selection

SELECTION_FILE = "selection.json"
HELDOUT_FILE = "heldout_selection.json"
STAGING = ".export-staging"


def mask_digest(mask: np.ndarray) -> str:
    """A short hash of which pixels are masked (independent of 255 vs other nonzero values)."""
    m = np.asarray(mask) > 0
    h = hashlib.blake2b(np.packbits(m).tobytes(), digest_size=12)
    h.update(repr(m.shape).encode())
    return h.hexdigest()


def item_digest(mask_hash: str, cam_class: int, note: str = "") -> str:
    return f"{mask_hash}:{int(cam_class)}:{note}"


def read_snapshot(out_dir: str | os.PathLike, image_hw: tuple[int, int]) -> tuple[dict[str, str], list[str]]:
    """``({index: digest}, problems)`` of what ``out_dir`` holds now (empty if nothing exported).

    An unreadable selection or mask is reported in ``problems`` and treated as not
    exported, so the next export rewrites it.
    """
    out_dir = Path(out_dir)
    snap: dict[str, str] = {}
    problems: list[str] = []
    for name in (SELECTION_FILE, HELDOUT_FILE):
        path = out_dir / name
        if not path.exists():
            continue
        try:
            sel = load_selection(path, check_masks=False)
        except UserError as exc:
            problems.append(f"earlier export: {exc}")
            continue
        for it in sel.items:
            try:
                m = read_mask(sel.mask_path(it), expected_hw=image_hw, what=f"exported mask for index '{it.index}'")
            except UserError as exc:
                problems.append(str(exc))
                continue
            snap[it.index] = item_digest(mask_digest(m), it.cam_class, it.note)
    return snap, problems


def write_export(out_dir: str | os.PathLike, train_result: str, items: list[SelectionItem],
                 heldout: list[SelectionItem], masks: dict[str, np.ndarray]) -> tuple[Path, Path | None]:
    """Rewrites the export folder (see module docstring); item masks are ``masks/<file>.png``.

    Args:
        out_dir: export folder (created).
        train_result: the ``train_result`` string written into the JSON files.
        items: the selection's items; ``heldout``: the held-out items (may be empty).
        masks: ``{index: uint8 [H, W]}`` for every item.

    Returns:
        ``(selection path, held-out path or None)``.

    Raises:
        UserError: the folder cannot be written (nothing already exported is changed
            when that happens before step 2).
    """
    out_dir = ensure_dir(out_dir)
    stage = out_dir / STAGING
    try:
        if stage.exists():
            shutil.rmtree(stage)
        ensure_dir(stage / "masks")
        for it in items + heldout:
            write_mask(stage / it.mask, masks[it.index])
        # paths are relative to out_dir, not to the staging folder
        provenance = result_provenance(resolve_relative(train_result, out_dir / SELECTION_FILE)) if train_result else None
        save_selection(stage / SELECTION_FILE, train_result, items, provenance=provenance)
        if heldout:
            save_selection(stage / HELDOUT_FILE, train_result, heldout, provenance=provenance)
        # step 2: renames
        ensure_dir(out_dir / "masks")
        for it in items + heldout:
            ensure_dir((out_dir / it.mask).parent)
            os.replace(stage / it.mask, out_dir / it.mask)
        if heldout:
            os.replace(stage / HELDOUT_FILE, out_dir / HELDOUT_FILE)
        os.replace(stage / SELECTION_FILE, out_dir / SELECTION_FILE)
        # step 3: nothing unlisted stays
        if not heldout and (out_dir / HELDOUT_FILE).exists():
            (out_dir / HELDOUT_FILE).unlink()
        listed = {(out_dir / it.mask).resolve() for it in items + heldout}
        for png in (out_dir / "masks").rglob("*.png"):
            if png.resolve() not in listed:
                png.unlink()
        for folder in sorted((out_dir / "masks").rglob("*"), key=lambda f: -len(f.parts)):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    except OSError as exc:
        raise UserError(f"export to '{out_dir}' failed: {exc.strerror or exc}"
                        f"{' (' + str(exc.filename) + ')' if getattr(exc, 'filename', None) else ''}") from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out_dir / SELECTION_FILE, (out_dir / HELDOUT_FILE) if heldout else None
