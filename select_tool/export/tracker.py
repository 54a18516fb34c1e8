"""What the export folder holds and what an export would change (no Tk).

``ExportTracker`` remembers the snapshot ``{index: digest}`` of the export folder
(``select_tool.export.exporter``), compares it with the current masks (digests
from ``select_tool.state.masks.MaskBook.digest``) and writes the folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import UserError
from datasets.selection import SelectionItem
from select_tool.export.autosave import relative_to
from select_tool.export.exporter import read_snapshot, write_export


class ExportTracker:
    """The export folder (``out_dir``), its snapshot, ``diff`` and ``export``.

    Args:
        image_hw: mask size, to read what the folder holds.
        train_result: the train result the selection refers to (path or None).
        problems: where unreadable entries of an earlier export are reported.
    """

    def __init__(self, *, image_hw: tuple[int, int], train_result: Path | None, problems: list[str]):
        self.image_hw = image_hw
        self.train_result = train_result
        self.problems = problems
        self.out_dir: Path | None = None
        self.exported: dict[str, str] = {}

    def set_dir(self, out_dir: str | os.PathLike) -> None:
        """Where ``export`` writes; reads what it holds now."""
        self.out_dir = Path(out_dir)
        self.exported, problems = read_snapshot(self.out_dir, self.image_hw)
        self.problems.extend(problems)

    def diff(self, now: dict[str, str]) -> dict[str, list[str]]:
        """``{"added", "changed", "removed"}`` between the current digests ``now`` and the folder."""
        return {"added": sorted(i for i in now if i not in self.exported),
                "changed": sorted(i for i in now if i in self.exported and now[i] != self.exported[i]),
                "removed": sorted(i for i in self.exported if i not in now)}

    def export(self, out_dir: str | os.PathLike | None, items: list[SelectionItem], masks: dict[str, np.ndarray],
               digest: Callable[[str], str], *, heldout_fraction: float = 0.0,
               seed: int = 0) -> tuple[Path, Path | None]:
        """Rewrites the folder to hold exactly ``items`` (see ``SelectionState.export``)."""
        if not 0.0 <= heldout_fraction < 1.0:
            raise UserError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
        if out_dir is None:
            if self.out_dir is None:
                raise ValueError("export() needs out_dir (or set_export_dir first)")
            out_dir = self.out_dir
        out_dir = Path(out_dir)
        if self.out_dir is None or out_dir.resolve() != self.out_dir.resolve():
            self.out_dir = out_dir
            self.exported, _ = read_snapshot(out_dir, self.image_hw)
        if not items and not self.exported:
            raise UserError("nothing to export: no image has a mask yet")
        held: list[SelectionItem] = []
        n_held = int(round(heldout_fraction * len(items)))
        if n_held:
            rng = np.random.default_rng(seed)
            pick = set(rng.choice(len(items), size=n_held, replace=False).tolist())
            held = [it for k, it in enumerate(items) if k in pick]
            items = [it for k, it in enumerate(items) if k not in pick]
        paths = write_export(out_dir, relative_to(self.train_result, out_dir), items, held, masks)
        self.exported = {it.index: digest(it.index) for it in items + held}
        return paths
