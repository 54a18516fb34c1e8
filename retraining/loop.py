"""The one retraining loop every method shares (thesis §3.1).

Start from a fresh copy of the base model; up to ``iterations`` optimiser steps, each
on a batch from ``method.sample_batch`` (``random`` training images + ``selected`` pool
items, seeded); after each step the selected images' true-class probabilities are
recorded, and validation accuracy every ``eval_every`` steps, in ``history.jsonl``.
With a ``StopSpec`` the run ends early when the chosen validation score stops improving
(``retraining.stopping``) and keeps the best-scoring weights.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from classification_models.classifier import Classifier
from classification_models.distributed import distribute_batch
from classification_models.own_model import freeze as freeze_layers
from classification_models.precision import with_precision
from classification_models.training import WarmUp, make_optimizer  # noqa: F401 - the one optimiser factory
from classification_models.divergence import diverged_message, nonfinite_probs, nonfinite_step
from classification_models.training import recalibrate_batch_norm, training_batch_norm_layers
from common.errors import UserError
from common.logs import progress_bars
from common.run_files import Best, HistoryRow, Iterations, append_history
from retraining.config import StopSpec
from retraining.stopping import EarlyStop, ce_drop

log = logging.getLogger(__name__)


def clone_classifier(base: Classifier, freeze=None, precision: str = "float32") -> Classifier:
    """A trainable copy of ``base`` with identical weights (same parts and input convention).

    Args:
        freeze: optional ``retraining.config.Freeze``: layers up to ``up_to``
            and (``batch_norm: "inference"``) batch-norm layers are frozen in the copy.
        precision: ``float32`` or ``mixed_float16`` (``classification_models.precision``).
    """
    clf = base.clone() if precision == "float32" else with_precision(base, precision)
    if freeze is not None:
        freeze_layers(clf.model, up_to=freeze.up_to, batch_norm=freeze.batch_norm, source="freeze")
    return clf


class Diverged(UserError):
    """A method's loss or weights became non-finite; ``method`` and ``iteration`` say where."""

    def __init__(self, message: str, *, method: str, iteration: int):
        super().__init__(message)
        self.method = method
        self.iteration = iteration


def current_learning_rate(optimizer) -> float | None:
    """The rate ``optimizer`` uses at its current step (after warm-up, schedules)."""
    try:
        return float(np.asarray(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


@dataclasses.dataclass
class LoopResult:
    """What the loop measured. ``step_seconds``: median wall time of a step (first step,
    which traces the function, excluded); ``batch_seconds``: median wall time of drawing
    a batch (from arrays or the records' stream) before it; ``history``: the rows written to history.jsonl;
    ``iterations_run``: steps taken; ``best``: with early stopping, the criterion, the
    iteration whose weights the model ends with (0: the starting model) and its score."""

    step_seconds: float
    history: list[HistoryRow]
    iterations_run: int = 0
    best: dict | None = None
    batch_seconds: float = 0.0


def to_tensors(batch: dict) -> dict:
    return {k: tf.constant(v) for k, v in batch.items()}


def run_loop(method, *, iterations: int, optimizer, seed: int, eval_every: int,
             val: tuple[np.ndarray, np.ndarray] | None, history_path: Path | None,
             val_swap: tuple[np.ndarray, np.ndarray] | None = None,
             stopping: StopSpec | None = None,
             on_check: Callable[[int], None] | None = None, bn_batches: int = 0, strategy=None) -> LoopResult:
    """Trains ``method.clf`` in place (``method.setup`` must have run).

    Args:
        method: a set-up ``Method``.
        iterations: optimiser steps.
        optimizer: a Keras optimiser (fresh per method).
        seed: batch sampling seed (same seed -> same batches).
        eval_every: validation accuracy every this many steps (and at the last one).
        val: ``(images, labels)`` of the validation split, or None.
        val_swap: ``(images, labels)`` of the cue-swapped validation images, or None
            (``val_swap_accuracy`` in the history at the same iterations as ``val``).
        history_path: ``history.jsonl`` to append to (None: keep in memory only).
        stopping: early stopping, ``on`` ``val`` or ``val_swap`` (that split must be given;
            ``retraining.stopping.stopping_rule`` resolves the config's), or None to run
            all ``iterations``. The starting model is scored first, so with ``restore_best``
            a run that never beats it ends with the starting weights.
        on_check: called with the iteration number before the first step (0) and at
            every validation check (e.g. to record CAMs along the run).
        bn_batches: batches of plain training images that recalibrate the model's
            training batch-norm layers before every check and at the end
            (``classification_models.training.recalibrate_batch_norm``); 0 or a model
            without such layers: none.

    Returns:
        ``LoopResult``. A line per validation check and the early stop are logged (INFO).

    Raises:
        Diverged: the loss, a weight or the predicted probabilities of the selected or
            validation images became NaN/inf (the step is logged in the history as
            ``{"iteration", "stopped"}``).
        WorkerLost: with ``strategy``, another worker died.

    ``strategy``: the multi-worker strategy ``method.clf`` and ``optimizer`` were made
    under, or None; every worker draws the same batch (same seed) and trains on its rows
    (``classification_models.distributed.distribute_batch``).
    """
    clf = method.clf
    if strategy is not None and not optimizer.built:
        with strategy.scope():
            optimizer.build(clf.model.trainable_variables)
    step = clf.make_train_step(method.loss, optimizer, strategy=strategy)
    rng = np.random.default_rng(seed)
    sel = method.ctx.selected
    times, batch_times, history, ces = [], [], [], []

    def stop(it: int, what: str):
        message = diverged_message(what_ran=f"method {method.label}", at=f"iteration {it} of {iterations}",
                                   what=what, learning_rate=current_learning_rate(optimizer))
        if history_path is not None:
            append_history(history_path, HistoryRow(iteration=it, stopped=message))
        return Diverged(message, method=method.label, iteration=it)

    def finite_probs(x, it: int, where: str) -> np.ndarray:
        p = clf.predict_proba(x)
        what = nonfinite_probs(p, where=where)
        if what:
            raise stop(it, what)
        return p

    def accuracy(xy, it: int = 0, where: str = "validation images") -> float:
        return float((finite_probs(xy[0], it, where).argmax(1) == xy[1]).mean())

    refresh = batch_norm_refresh(method, batches=bn_batches, seed=seed)

    early = None
    if stopping is not None:
        watch = {"val": val, "val_swap": val_swap}.get(stopping.on)
        if watch is None:
            raise ValueError(f"early stopping on '{stopping.on}' needs that split")
        early = EarlyStop(spec=stopping, score=accuracy(watch))
        best_weights = clf.model.get_weights() if stopping.restore_best else None
    if on_check is not None:
        on_check(0)
    it, checked = 0, False
    # a bar on a terminal (quiet in CI and under -q); the check lines print above it
    bars = progress_bars(log)
    bar = tqdm(total=iterations, desc=method.label, unit="it", leave=False, disable=not bars)
    with bar, (logging_redirect_tqdm() if bars else contextlib.nullcontext()):
        for it in range(1, iterations + 1):
            t0 = time.perf_counter()
            drawn = method.sample_batch(rng)
            args = (to_tensors(drawn),) if strategy is None else distribute_batch(strategy, drawn)
            batch_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            total, logs = step(*args)
            total = float(total)
            times.append(time.perf_counter() - t0)
            # a NaN/inf loss or weight ends the method here: every later number would be noise
            what = nonfinite_step(total, clf.model)
            if what:
                raise stop(it, what)
            row = {"iteration": it, "total": total, "ce": float(logs["ce"]), "penalty": float(logs["penalty"])}
            ces.append(row["ce"])
            checked = val is not None and (it % eval_every == 0 or it == iterations)
            if checked and refresh is not None:
                refresh()
            if len(sel):
                p = finite_probs(sel.images, it, "selected images")
                row["selected_p_true"] = {i: float(p[j, sel.labels[j]]) for j, i in enumerate(sel.indices)}
            if checked:
                row["val_accuracy"] = accuracy(val, it)
                if val_swap is not None:
                    row["val_swap_accuracy"] = accuracy(val_swap, it, "cue-swapped validation images")
                extra = f" val-swap acc {row['val_swap_accuracy']:.3f}" if "val_swap_accuracy" in row else ""
                log.info("  %s: iteration %d/%d loss %.4f val acc %.3f%s", method.label, it, iterations, total,
                         row["val_accuracy"], extra)
            history.append(HistoryRow(**row))
            bar.update(1)
            if checked:
                bar.set_postfix({k: round(row[k], 3) for k in ("val_accuracy", "val_swap_accuracy") if k in row})
            if history_path is not None:
                append_history(history_path, history[-1])
            if on_check is not None and checked:
                on_check(it)
            if early is not None and checked:
                if early.improved(it, row[f"{stopping.on}_accuracy"]):
                    if stopping.restore_best:
                        best_weights = clf.model.get_weights()
                elif early.should_stop(it, ces):
                    log.info("  %s: stopped at iteration %d: %s accuracy has not improved on %.3f (iteration %d) "
                             "for %d iterations", method.label, it, stopping.on, early.score, early.iteration,
                             it - early.iteration)
                    break
    if early is not None and stopping.restore_best and early.iteration != it:
        clf.model.set_weights(best_weights)  # recalibrated at its check
    elif refresh is not None and not checked:
        refresh()
    timed = times[1:] if len(times) > 1 else times
    drawn = batch_times[1:] if len(batch_times) > 1 else batch_times  # the first fills a stream's buffer
    return LoopResult(step_seconds=float(statistics.median(timed)), history=history, iterations_run=it,
                      best=None if early is None else {"on": stopping.on, "iteration": early.iteration,
                                                        "score": early.score, "restored": bool(stopping.restore_best)},
                      batch_seconds=float(statistics.median(drawn)))


def batch_norm_refresh(method, *, batches: int, seed: int) -> Callable[[], None] | None:
    """The recalibration of ``method.clf``'s training batch-norm layers on ``batches``
    batches of plain training images (a stream of their own, seeded from ``seed``), or
    None when there is nothing to recalibrate."""
    clf = method.clf
    if batches <= 0 or not training_batch_norm_layers(clf.model):
        return None

    plain = method.ctx.plain_batches(batch_size=max(1, sum(method.batch_counts())), seed=seed + 1)
    # compiled once, on its first call inside the recalibration (momentum 0 then and ever after)
    forward = tf.function(lambda x: clf.forward(x, training=True)[1], reduce_retracing=True)

    def refresh() -> None:
        recalibrate_batch_norm(clf.model, forward, itertools.islice(plain, batches))

    return refresh


def end_of_run(res: LoopResult, *, iterations: int, window: int, min_drop: float) -> Iterations:
    """Steps run of ``iterations``, the kept checkpoint and how the run ended: the training
    cross-entropy's fall over the last ``window`` iterations (``ce_drop``) and whether
    the method was still learning when the iterations ran out — every iteration used,
    that fall above ``min_drop`` and (with early stopping) its best check within the
    window — which says to raise ``iterations``."""
    drop = ce_drop([r.ce for r in res.history if r.ce is not None], patience=window)
    best = None if res.best is None else Best(**res.best)
    recent = best is None or best.iteration > res.iterations_run - window
    still = drop is not None and res.iterations_run == iterations and drop > min_drop and recent
    return Iterations(run=res.iterations_run, max=iterations, best=best,
                      ce_drop=None if drop is None else round(drop, 4), still_learning=still)
