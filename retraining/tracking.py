"""Test accuracy and worst-group accuracy along a run (``RetrainConfig.track_test``), for
accuracy-against-iterations figures and budgets read from one run (the model at
iteration 100 and at 300 of a 300-iteration run). The test split never chooses anything:
these numbers are written, not read by the run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from common.io import atomic_write_json

#: the file a tracked method writes next to its ``history.jsonl``
ALONG_FILE = "along.json"


@dataclasses.dataclass
class TestTracker:
    """Scores a model on the test split at every check of its run.

    Attributes:
        images, labels: the test split (uint8 ``[N,H,W,C]``, int ``[N]``).
        groups: ``retraining.groups.GroupSource`` with the ``cue_values`` source, or None.
    """

    images: np.ndarray
    labels: np.ndarray
    groups: object | None = None
    rows: list = dataclasses.field(default_factory=list)

    def __call__(self, clf, iteration: int) -> None:
        preds = clf.predict_proba(self.images).argmax(1)
        row = {"iteration": int(iteration), "test": float((preds == self.labels).mean())}
        if self.groups is not None and self.groups.source == "cue_values":
            wg = self.groups.score(clf, test_preds=preds)
            row["worst_group"] = None if wg is None else wg["accuracy"]
        self.rows.append(row)

    def save(self, path: str | Path) -> Path:
        """``along.json``: ``{"rows": [{"iteration", "test", "worst_group"?}, ...]}``."""
        atomic_write_json(Path(path), {"rows": self.rows})
        return Path(path)


def make_tracker(dataset, groups, *, stream: bool) -> TestTracker | None:
    """A fresh tracker for one method, or None when the data set has no test split or is
    streamed (the split is then not held in memory)."""
    if stream or "test" not in dataset.available_splits():
        return None
    test = dataset.arrays("test")
    return TestTracker(images=test.images, labels=np.asarray(test.labels), groups=groups)
