"""Where a run measures worst-group accuracy (groups = true class × cue value), and the
measurement for one model (``retraining.metrics.worst_group_accuracy``).

Cue values come from the data set where it records them (the test split of an image
folder with ``cues.csv``, e.g. every set of the shortcut suite) or else from the
cue-swapped validation copy, where each image's cue value is the class of the cue pasted
into it (``retraining.val_swap``).
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from retraining.metrics import worst_group_accuracy

log = logging.getLogger(__name__)


@dataclasses.dataclass
class GroupSource:
    """The images worst-group accuracy is measured on.

    Attributes:
        source: ``cue_values`` (the test split's recorded cue values) or ``val_swap``.
        labels, cues: int ``[N]`` true classes and cue values (-1 unknown).
    """

    source: str
    labels: np.ndarray
    cues: np.ndarray
    _images: np.ndarray | None = dataclasses.field(default=None, repr=False)  # the copy's, for ``val_swap``

    def score(self, clf, *, test_preds=None) -> dict | None:
        """``worst_group_accuracy`` of ``clf``; ``test_preds``: its test predictions when
        already computed (``cue_values`` source), else the copy's images are predicted."""
        if self.source == "cue_values":
            preds = test_preds
        else:
            preds = clf.predict_proba(self._images).argmax(1)
        return worst_group_accuracy(labels=self.labels, cues=self.cues, preds=preds)

    def describe(self, scores: dict) -> dict:
        """``run.json``'s ``worst_group`` (``common.run_files.WorstGroupInfo``) from a model's ``score``."""
        return {"source": self.source, "n_groups": scores["n_groups"], "n_images": int((self.cues >= 0).sum())}


def group_source(choice: str, *, dataset, val_cf) -> GroupSource | None:
    """The run's worst-group images for ``RetrainConfig.worst_group`` = ``choice``.

    A choice the run cannot honour (no cue values recorded, no cue-swapped copy) logs one
    warning line naming the field and what the run measures instead.
    """
    if choice == "none":
        return None
    cues = dataset.cue_values("test") if "test" in dataset.available_splits() else None
    from_test = None if cues is None else GroupSource("cue_values", np.asarray(dataset.index_table("test")[1], np.int64),
                                                      np.asarray(cues, np.int64))
    from_copy = None if val_cf is None else GroupSource("val_swap", val_cf.labels, val_cf.cues, _images=val_cf.images)
    if choice == "auto":
        return from_test or from_copy
    wanted, other = (from_test, from_copy) if choice == "cue_values" else (from_copy, from_test)
    if wanted is None:
        why = (f"data set '{dataset.name}' records no cue values for its test images (an image folder's cues.csv)"
               if choice == "cue_values" else "the run has no cue-swapped validation copy")
        instead = {"cue_values": "on the test split's recorded cue values",
                   "val_swap": "on the cue-swapped validation copy"}.get(other.source) if other else None
        log.warning("worst_group '%s': %s; worst-group accuracy is %s", choice, why,
                    f"measured {instead} instead" if instead else "not reported (null)")
        return other
    return wanted


def worst_group(groups: GroupSource | None, clf, preds: dict) -> dict | None:
    """``GroupSource.score`` of ``clf`` (``preds``: its predictions per split), None without a source."""
    return None if groups is None else groups.score(clf, test_preds=preds.get("test"))
