"""One split's scores from predicted probabilities (scikit-learn): what ``Classifier.evaluate``
and ``evaluate_arrays`` return and what the train result's ``metrics`` hold."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix


def split_report(probs: np.ndarray, labels, *, class_names: Sequence[str]) -> dict:
    """``{"accuracy", "n", "report", "confusion"}`` of ``probs`` ``[N, C]`` against ``labels``:
    accuracy (NaN for an empty split), scikit-learn's per-class precision / recall / F1
    (``classification_report``, ``zero_division=0``) and the confusion matrix, both over all
    ``C = len(class_names)`` classes."""
    preds = np.asarray(probs).argmax(axis=1)
    labels = np.asarray(labels)
    classes = list(range(len(class_names)))
    report = classification_report(labels, preds, labels=classes, target_names=list(class_names),
                                   output_dict=True, zero_division=0)
    return {
        "accuracy": float((preds == labels).mean()) if len(labels) else float("nan"),
        "n": int(len(labels)),
        "report": report,
        "confusion": confusion_matrix(labels, preds, labels=classes).tolist(),
    }
