"""``sweep_<kind>.json``, the file a retraining sweep writes (``retraining.sweeps``)
and the sweep figure reads (``plot_utils.figures``), as a frozen dataclass read and written
through ``common.run_files``."""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Optional

from common.errors import UserError
from common.run_files import SCHEMA_VERSION

#: the swept key of each sweep kind
SWEEP_X = {"lambda": "lambda", "masks": "n_masks", "pasa": "th"}
#: the validation accuracy a sweep chooses on (``val_swap_accuracy`` when every point has it)
CHOICE_KEYS = ("val_swap_accuracy", "val_accuracy")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepBase:  # the base model's accuracy
    val: Optional[float] = None
    test: Optional[float] = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepFile:
    """One sweep: its ``kind`` and swept key ``x``, the base model's accuracy, the key it
    chose on, the chosen point and every point (one row per candidate: the swept value,
    ``val_accuracy``, ``val_swap_accuracy``, ``test_accuracy``, ...)."""

    schema_version: int = field(default=SCHEMA_VERSION, metadata={"min": 1})
    kind: str = field(metadata={"choices": tuple(SWEEP_X)})
    x: str
    base: SweepBase
    chosen_on: str = field(metadata={"choices": CHOICE_KEYS})
    best: dict[str, Any]
    points: list[dict[str, Any]] = field(metadata={"min_len": 1})

    def validate(self, source: str) -> None:
        for i, p in enumerate(self.points):
            for key in (self.x, "val_accuracy"):
                if key not in p:
                    raise UserError(f"{source}: points[{i}] has no '{key}' (keys: {', '.join(sorted(p))})")
