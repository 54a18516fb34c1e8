"""How the mask tool names classes: one form everywhere, names rather than ids.

``class_change(names, 7, probs)`` -> ``"7 → 0 (p = 0.93)"`` for a misclassified image
(true → predicted, the predicted class's probability), ``"7 (p = 0.98)"`` for a
correct one and ``"7"`` before the predictions exist.
"""
from __future__ import annotations

import numpy as np


def class_change(names, true_class: int, probs: np.ndarray | None) -> str:
    y = int(true_class)
    if probs is None:
        return f"{names[y]}"
    p = int(np.argmax(probs))
    if p == y:
        return f"{names[y]} (p = {float(probs[p]):.2f})"
    return f"{names[y]} → {names[p]} (p = {float(probs[p]):.2f})"


def image_title(index: str, names, true_class: int, probs: np.ndarray | None) -> str:
    """``train_00017   7 → 0 (p = 0.93)   ✗ misclassified``."""
    text = f"{index}   {class_change(names, true_class, probs)}"
    if probs is None:
        return text + "   predicting…"
    return text + ("   ✓" if int(np.argmax(probs)) == int(true_class) else "   ✗ misclassified")
