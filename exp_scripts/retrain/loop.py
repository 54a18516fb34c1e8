"""The one retraining loop every method shares (thesis §3.1).

Start from a fresh copy of the base model; ``iterations`` optimiser steps, each on a
batch from ``method.sample_batch`` (``random`` training images + ``selected`` pool
items, seeded); after each step the selected images' true-class probabilities are
recorded, and validation accuracy every ``eval_every`` steps, in ``history.jsonl``.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from classification_models.classifier import Classifier
from common.io import append_jsonl


def clone_classifier(base: Classifier, freeze=None) -> Classifier:
    """A trainable copy of ``base`` with identical weights (same parts and input convention).

    Args:
        freeze: optional ``exp_scripts.retrain.config.Freeze``: layers up to ``up_to``
            and (``batch_norm: "inference"``) batch-norm layers are frozen in the copy.
    """
    from classification_models.own_model import freeze as freeze_layers

    clf = base.clone()
    if freeze is not None:
        freeze_layers(clf.model, up_to=freeze.up_to, batch_norm=freeze.batch_norm, source="freeze")
    return clf


def make_optimizer(name: str, learning_rate: float):
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    return keras.optimizers.Adam(learning_rate=learning_rate)


@dataclasses.dataclass
class LoopResult:
    """What the loop measured. ``step_seconds``: median wall time of a step (first step,
    which traces the function, excluded); ``history``: the rows written to history.jsonl."""

    step_seconds: float
    history: list[dict]


def to_tensors(batch: dict) -> dict:
    import tensorflow as tf

    return {k: tf.constant(v) for k, v in batch.items()}


def run_loop(method, *, iterations: int, optimizer, seed: int, eval_every: int,
             val: tuple[np.ndarray, np.ndarray] | None, history_path: Path | None,
             progress: Callable[[str], None] | None = None) -> LoopResult:
    """Trains ``method.clf`` in place (``method.setup`` must have run).

    Args:
        method: a set-up ``Method``.
        iterations: optimiser steps.
        optimizer: a Keras optimiser (fresh per method).
        seed: batch sampling seed (same seed -> same batches).
        eval_every: validation accuracy every this many steps (and at the last one).
        val: ``(images, labels)`` of the validation split, or None.
        history_path: ``history.jsonl`` to append to (None: keep in memory only).
        progress: optional callback for one-line progress messages.

    Returns:
        ``LoopResult``.
    """
    clf = method.clf
    step = clf.make_train_step(method.loss, optimizer)
    rng = np.random.default_rng(seed)
    sel = method.ctx.selected
    times, history = [], []
    for it in range(1, iterations + 1):
        batch = to_tensors(method.sample_batch(rng))
        t0 = time.perf_counter()
        total, logs = step(batch)
        total = float(total)
        times.append(time.perf_counter() - t0)
        row = {"iteration": it, "total": total, "ce": float(logs["ce"]), "penalty": float(logs["penalty"])}
        if len(sel):
            p = clf.predict_proba(sel.images)
            row["selected_p_true"] = {i: float(p[j, sel.labels[j]]) for j, i in enumerate(sel.indices)}
        if val is not None and (it % eval_every == 0 or it == iterations):
            row["val_accuracy"] = float((clf.predict_proba(val[0]).argmax(1) == val[1]).mean())
            if progress:
                progress(f"  {method.label}: iteration {it}/{iterations} loss {total:.4f} val acc {row['val_accuracy']:.3f}")
        history.append(row)
        if history_path is not None:
            append_jsonl(history_path, row)
    timed = times[1:] if len(times) > 1 else times
    return LoopResult(step_seconds=float(statistics.median(timed)), history=history)
