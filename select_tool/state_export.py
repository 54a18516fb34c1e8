"""Export of the mask tool's selection and the count of changes not exported (no Tk).

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes);
the folder is written by ``select_tool.exporter.write_export``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.errors import UserError
from datasets.selection import SelectionItem
from select_tool.exporter import item_digest, mask_digest, read_snapshot, write_export


class ExportMixin:
    """``set_export_dir``, ``export_diff``, ``unexported_changes``, ``export``."""

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

    @property
    def n_exported(self) -> int:
        """Images the export folder holds (as last exported or found on start)."""
        return len(self._exported)

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
