"""Feedback rounds of the mask tool: which model is current, and how each round went.

Round 0 is the train result the tool was opened on. When the expert accepts a
retraining, the run's model is copied into ``<work>/rounds/round_<n>/model.keras``
and a train result ``result.json`` is written next to it (the format every tool
reads, the model pinned by its SHA-256; ``config`` records the round, the parent run
and the parent result), so the next round — or ``python -m select_tool.main``,
``exp_backprops``, ``select_tool.auto`` — starts from it. ``rounds.json`` in the work
folder lists every round (masks, method, accuracies, cue flips) and which one is
current; any round can be restored.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Optional

from classification_models.train_result import load_train_result, write_train_result
from common.config import from_dict, to_dict
from common.errors import UserError
from common.io import atomic_write_json, ensure_dir, read_json
from common.paths import resolve_relative
from common.run_files import load_summary

ROUNDS_FILE = "rounds.json"


@dataclasses.dataclass(frozen=True)
class Round:
    """One accepted model: its train result (relative to the work folder), the run it came
    from, the masks it was trained on and its scores (None for round 0)."""

    number: int
    result: str
    run: Optional[str] = None
    method: Optional[str] = None
    masks: int = 0
    test: Optional[float] = None
    val: Optional[float] = None
    val_swap: Optional[float] = None
    cue_flips: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class RoundsFile:
    current: int
    rounds: list[Round]


def run_scores(run_dir: Path, method: str) -> dict:
    """``{test, val, val_swap, cue_flips}`` of ``method`` in a finished run's ``summary.json``."""
    summary = load_summary(Path(run_dir) / "summary.json")
    if method not in summary.methods:
        raise UserError(f"run '{run_dir}' has no method '{method}' (has: {', '.join(summary.methods)})")
    m = summary.methods[method]
    return {"test": m.accuracy.test, "val": m.accuracy.val, "val_swap": m.accuracy.val_swap,
            "cue_flips": None if m.cue is None else m.cue.after.flip_rate}


class RoundBook:
    """The rounds of one work folder (created on first use).

    Args:
        work_dir: the tool's work folder (the session folder).
        base_result: the train result the tool was opened on (round 0).
    """

    def __init__(self, work_dir: str | os.PathLike, base_result: str | os.PathLike):
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / ROUNDS_FILE
        base = Round(number=0, result=os.path.relpath(Path(base_result).resolve(), self.work_dir.resolve()))
        if self.path.exists():
            data = from_dict(RoundsFile, read_json(self.path, what="rounds"), source=str(self.path))
            rounds = [base] + [r for r in data.rounds if r.number > 0]
            self.file = RoundsFile(current=data.current if any(r.number == data.current for r in rounds) else 0,
                                   rounds=rounds)
        else:
            self.file = RoundsFile(current=0, rounds=[base])

    @property
    def current(self) -> Round:
        return next(r for r in self.file.rounds if r.number == self.file.current)

    @property
    def rounds(self) -> list[Round]:
        return list(self.file.rounds)

    def result_path(self, rnd: Round | None = None) -> Path:
        return resolve_relative((rnd or self.current).result, self.work_dir / ROUNDS_FILE)

    def parent_result(self, rnd: Round | None = None) -> Path | None:
        """The train result round ``rnd`` (default: the current one) was retrained from; None for round 0."""
        rnd = rnd or self.current
        if rnd.number == 0:
            return None
        parent = load_train_result(self.result_path(rnd)).file.config.get("parent_result")
        return Path(parent) if parent else None

    def next_number(self) -> int:
        return max(r.number for r in self.file.rounds) + 1

    def _save(self) -> None:
        atomic_write_json(self.path, to_dict(self.file))

    def accept(self, run_dir: Path, *, method: str, masks: int) -> Round:
        """Makes the run's model the current one (see module docstring); returns the new round.

        Raises:
            UserError: the run has no model, or its files do not match.
        """
        run_dir = Path(run_dir)
        model = run_dir / method / "model.keras"
        if not model.is_file():
            raise UserError(f"run '{run_dir}' has no model '{model.name}' for method '{method}'")
        scores = run_scores(run_dir, method)
        parent_path = self.result_path()
        parent = load_train_result(parent_path)
        n = self.next_number()
        folder = ensure_dir(self.work_dir / "rounds" / f"round_{n}")
        shutil.copy2(model, folder / "model.keras")
        f = parent.file
        result = write_train_result(folder / "result.json", {
            "name": f"{parent.name.split(' · round')[0]} · round {n}", "mode": "feedback_round",
            "model_path": "model.keras", "dataset": {"name": f.dataset.name, "params": dict(f.dataset.params)},
            "data_root": parent.resolve_data_root(), "class_names": list(f.class_names),
            "image_shape": list(f.image_shape), "input": f.input, "model_parts": f.model_parts,
            "metrics": {}, "run_dir": os.path.relpath(run_dir.resolve(), folder.resolve()),
            "config": {"round": n, "parent_run": str(run_dir.resolve()), "parent_result": str(parent_path.resolve()),
                       "method": method, "masks": masks},
        })
        rnd = Round(number=n, result=os.path.relpath(result.resolve(), self.work_dir.resolve()),
                    run=os.path.relpath(run_dir.resolve(), self.work_dir.resolve()), method=method, masks=masks,
                    **scores)
        self.file = RoundsFile(current=n, rounds=self.file.rounds + [rnd])
        self._save()
        return rnd

    def restore(self, number: int) -> Round:
        """Makes round ``number`` current again."""
        if not any(r.number == number for r in self.file.rounds):
            raise UserError(f"no round {number} (rounds: {', '.join(str(r.number) for r in self.file.rounds)})")
        self.file = RoundsFile(current=int(number), rounds=self.file.rounds)
        self._save()
        return self.current
