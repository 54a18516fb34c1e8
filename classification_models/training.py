"""The fit loop of base training (thesis §3.2.2, §3.3, §3.2.4).

Epochs over ``dataset.split('train', shuffle=True, augment=...)`` with a custom
``tf.function`` step from :meth:`Classifier.make_train_step`, so any extra loss term
plugs in through ``loss_fn(clf, batch) -> (loss, logs)``. After every epoch the
validation accuracy is appended to ``history.jsonl``. A non-finite loss or weight stops
the run and restores the weights of the last complete epoch. ``distribute`` runs the
same code path under ``tf.distribute`` (``none`` | ``mirrored`` | ``multi_worker``).

Also here: the seeded augmentation fallback. The upper bound K's data view (train on
train + val + part of test, evaluate on the rest) is ``datasets.remapped``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from classification_models.classifier import Classifier, cross_entropy_loss
from classification_models.distributed import cluster_strategy, distribute_batch
from classification_models.divergence import diverged_message, nonfinite_probs, nonfinite_step
from common.cluster import TF_CONFIG_ENV
from common.config import from_dict
from common.errors import UserError
from common.logs import progress_bars
from common.train_files import EpochRow, StopRow, append_epoch
from datasets.base import Dataset

#: the fields of a base-training history row; a custom loss's other logs go under ``extra``
EPOCH_FIELDS = frozenset(f.name for f in dataclasses.fields(EpochRow))

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
DISTRIBUTE = ("none", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Settings of :func:`fit`.

    Attributes:
        epochs: passes over the training split.
        batch_size: global batch size (split across replicas when distributed).
        learning_rate: optimiser step size.
        optimizer: ``adam`` or ``sgd`` (SGD uses ``momentum``).
        momentum: SGD momentum.
        seed: seeds the shuffling and augmentation of every epoch.
        augment: apply ``dataset.augment_fn()`` (method C, thesis §3.3).
        max_steps_per_epoch: cap on steps per epoch (smoke runs), None = whole split.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    seed: int = 0
    augment: bool = False
    max_steps_per_epoch: int | None = None


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        history: one dict per completed epoch (as written to ``history.jsonl``).
        epochs_completed: number of complete epochs (weights are those after it).
        steps: optimiser steps taken (including those of a discarded epoch).
        stopped: None, or why training stopped early (the weights were restored).
        seconds: wall-clock time of the loop.
    """

    history: list[dict]
    epochs_completed: int
    steps: int
    stopped: str | None
    seconds: float


def shrink_and_perturb(model, *, shrink: float, noise: float, seed: int) -> None:
    """Every trainable weight ``w <- shrink·w + noise·std(w)·ε`` with ``ε ~ N(0, 1)`` drawn
    from ``seed`` (Ash & Adams 2020, "shrink and perturb"): a warm start that keeps the
    direction of what the model learned but weakens it, so that new features can grow.
    ``std(w)`` is the tensor's own spread (a scalar has none), so ``noise`` is relative."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        w = np.asarray(v.numpy())
        spread = float(w.std()) if w.size > 1 else 0.0
        v.assign((shrink * w + noise * spread * rng.standard_normal(w.shape)).astype(w.dtype))


def training_batch_norm_layers(model) -> list:
    """The batch-normalisation layers of ``model`` that train (nested models included):
    the ones whose moving statistics lag behind weights that change."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def recalibrate_batch_norm(model, forward, batches) -> int:
    """Sets the moving mean and variance of every training batch-normalisation layer of
    ``model`` to the average of its batch statistics over ``batches`` ("precise BN"; the
    batch-norm update of Izmailov et al. 2018, SWA). After a short, fast retraining the
    moving statistics (momentum 0.99) still describe the old weights, and the model in
    inference mode scores far below the same model on batch statistics.

    ``forward(images)`` runs the model in training mode on one batch (it may be a
    ``tf.function``: the layers' momentum is 0 whenever it runs, so each call leaves one
    batch's statistics, which are averaged here). Every other non-trainable variable (a
    dropout's seed state) is put back, so training goes on as if no pass had run.

    Returns:
        The number of layers recalibrated (0: the model has none; no pass is run).
    """
    layers = training_batch_norm_layers(model)
    if not layers:
        return 0
    moving = {id(v) for layer in layers for v in (layer.moving_mean, layer.moving_variance)}
    kept = [(v, v.numpy()) for v in model.non_trainable_variables if id(v) not in moving]
    momenta = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape, np.float64), np.zeros(layer.moving_variance.shape, np.float64)]
            for layer in layers]
    n = 0
    try:
        for layer in layers:
            layer.momentum = 0.0  # each pass leaves exactly its batch's statistics
        for images in batches:
            forward(images)
            n += 1
            for (mean, var), layer in zip(sums, layers):
                mean += layer.moving_mean.numpy()
                var += layer.moving_variance.numpy()
        if n:
            for (mean, var), layer in zip(sums, layers):
                layer.moving_mean.assign((mean / n).astype(layer.moving_mean.dtype))
                layer.moving_variance.assign((var / n).astype(layer.moving_variance.dtype))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for v, value in kept:
            v.assign(value)
    return len(layers)


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9, warmup: int = 0):
    """The one optimiser factory (base training and retraining): ``adam`` or ``sgd`` (with
    ``momentum``).

    Args:
        learning_rate: the rate after warm-up.
        warmup: iterations of linear warm-up from ``learning_rate / warmup`` (0: none).
            A fresh Adam moves every weight by about ``learning_rate`` on its first
            steps, whatever the gradient's size; on a converged model that jolts the
            predictions before any learning happens.
    """
    lr = WarmUp(learning_rate, warmup) if warmup > 0 else learning_rate
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
    raise UserError(f"unknown optimizer '{name}' (valid: {', '.join(OPTIMIZERS)})")


def _warmup_class():
    class _WarmUp(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up: step s (0-based) uses ``rate · min(1, (s + 1) / steps)``."""

        def __init__(self, rate: float, steps: int):
            self.rate = float(rate)
            self.steps = int(steps)

        def __call__(self, step):
            frac = tf.minimum(1.0, (tf.cast(step, tf.float32) + 1.0) / float(self.steps))
            return self.rate * frac

        def get_config(self):
            return {"rate": self.rate, "steps": self.steps}

    return _WarmUp


def WarmUp(rate: float, steps: int):  # noqa: N802 - a class factory (keras imported lazily)
    return _warmup_class()(rate, steps)


def make_strategy(distribute: str):
    """The ``tf.distribute`` strategy for ``distribute`` (None for ``none``).

    When ``$TF_CONFIG`` names more than one worker the run is a multi-worker run whatever
    ``distribute`` says (``none`` or ``multi_worker``; ``mirrored`` is refused): the
    process's ``MultiWorkerMirroredStrategy`` (``classification_models.distributed``).
    ``multi_worker`` without such a cluster is one local worker. A multi-worker strategy
    must be created before TensorFlow runs any op, so call this first.
    """
    strategy = cluster_strategy()
    if strategy is not None:
        if distribute == "mirrored":
            raise UserError(f"train.distribute is 'mirrored' but ${TF_CONFIG_ENV} names "
                            f"{strategy.num_replicas_in_sync} workers: use 'none' or 'multi_worker'")
        return strategy
    if distribute == "none":
        return None
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if distribute == "multi_worker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as exc:
            raise UserError(
                f"cannot start multi_worker training: {str(exc).splitlines()[0]} "
                "(it must start before TensorFlow runs; check $TF_CONFIG)"
            ) from exc
    raise UserError(f"unknown distribute '{distribute}' (valid: {', '.join(DISTRIBUTE)})")


def _train_pipeline(dataset: Dataset, split: str, options: FitOptions, epoch: int):
    ds = dataset.split(split, batch_size=None, shuffle=True, seed=options.seed * 100003 + epoch,
                       augment=options.augment)
    ds = ds.map(lambda i, x, y: {"images": x, "labels": y})
    return ds.batch(options.batch_size)


def fit(
    clf: Classifier,
    dataset: Dataset,
    options: FitOptions,
    *,
    train_split: str = "train",
    val_split: str | None = "val",
    loss_fn: Callable = cross_entropy_loss,
    history_path: str | Path | None = None,
    strategy=None,
    optimizer=None,
    label: str = "training",
) -> FitResult:
    """Trains ``clf`` on ``dataset``'s ``train_split`` for ``options.epochs`` epochs.

    Args:
        clf: the classifier (built under ``strategy.scope()`` when distributed).
        dataset: a ``datasets.Dataset``; ``augment`` uses its ``augment_fn``.
        options: see :class:`FitOptions`.
        train_split: split to train on.
        val_split: split whose accuracy is logged per epoch (None: none).
        loss_fn: ``loss_fn(clf, batch) -> (loss, logs)``; batch has ``images`` and ``labels``;
            every log's epoch mean is written (``ce`` and ``penalty`` as fields of
            ``common.train_files.EpochRow``, any other under ``extra``).
        history_path: ``history.jsonl`` to append one line per epoch to.
        strategy: a ``tf.distribute.Strategy`` or None.
        optimizer: a Keras optimiser (default: from ``options``).
        label: what is trained, for the stop message (``"base training"``).

    Returns:
        :class:`FitResult`. On a non-finite loss or weight (checked after every step) or
        validation probability (after every epoch; ``classification_models.divergence``)
        the weights of the last complete epoch are restored and ``stopped`` says where
        it happened, in the words of a retraining method's divergence.
    """
    n_train = len(dataset.arrays(train_split))
    if n_train == 0:
        raise UserError(f"data set '{dataset.name}' has no images in split '{train_split}'")
    distributed = strategy is not None
    if distributed and options.batch_size < strategy.num_replicas_in_sync:
        raise UserError(f"batch_size {options.batch_size} is smaller than the "
                        f"{strategy.num_replicas_in_sync} replicas")
    steps_per_epoch = math.ceil(n_train / options.batch_size)
    if options.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, options.max_steps_per_epoch)
    scope = strategy.scope() if distributed else contextlib.nullcontext()
    with scope:
        if optimizer is None:
            optimizer = make_optimizer(options.optimizer, options.learning_rate, options.momentum)
        if not optimizer.built:
            optimizer.build(clf.model.trainable_variables)
    step = clf.make_train_step(loss_fn, optimizer, strategy=strategy)
    val = dataset.arrays(val_split) if val_split and val_split in dataset.available_splits() else None

    def diverged(epoch: int, step: str, what: str) -> str:
        return (diverged_message(what_ran=label, at=f"epoch {epoch} of {options.epochs}{step}", what=what,
                                 learning_rate=options.learning_rate) + f"; kept the weights after epoch {epoch - 1}")

    history: list[dict] = []
    total_steps = 0
    stopped = None
    good = clf.model.get_weights()
    start = time.perf_counter()
    bars = progress_bars(log)  # a terminal, not CI, INFO lines shown (common.logs)
    epoch_bar = tqdm(range(1, options.epochs + 1), desc="epochs", unit="epoch", disable=not bars, leave=False)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        ds = _train_pipeline(dataset, train_split, options, epoch)
        if options.max_steps_per_epoch:
            ds = ds.take(steps_per_epoch)
        sums: dict[str, float] = {}
        steps = 0
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", unit="step", disable=not bars, leave=False)
        for batch in ds:
            if distributed:
                # the batch of one process, each replica on its rows (weighted by its share)
                rows = int(batch["labels"].shape[0])
                if rows < strategy.num_replicas_in_sync:
                    log.info("epoch %d: the last %d image(s) are fewer than the %d replicas: not trained on", epoch,
                             rows, strategy.num_replicas_in_sync)
                    continue
                loss, logs = step(*distribute_batch(strategy, {k: v.numpy() for k, v in batch.items()}))
            else:
                loss, logs = step(batch)
            value = float(loss)
            steps += 1
            total_steps += 1
            what = nonfinite_step(value, clf.model)
            if what:
                stopped = diverged(epoch, f" (step {steps})", what)
                break
            sums["loss"] = sums.get("loss", 0.0) + value
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.update(1)
            if steps % 5 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / steps:.4f}")
        bar.close()
        probs = clf.predict_proba(val.images) if not stopped and val is not None and len(val) else None
        what = None if probs is None else nonfinite_probs(probs, where="validation images")
        if what:
            stopped = diverged(epoch, "", what)
        if stopped:
            clf.model.set_weights(good)
            break
        record: dict[str, Any] = {"epoch": epoch, "steps": steps}
        record.update({k: v / max(steps, 1) for k, v in sums.items()})
        if probs is not None:
            record["val_accuracy"] = float((probs.argmax(axis=1) == val.labels).mean())
        record["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(record)
        if history_path is not None:
            row = {k: v for k, v in record.items() if k in EPOCH_FIELDS}
            extra = {k: v for k, v in record.items() if k not in EPOCH_FIELDS}
            append_epoch(history_path, from_dict(EpochRow, {**row, "extra": extra or None},
                                                 source=f"{history_path} epoch {epoch}"))
        epoch_bar.set_postfix({k: f"{record[k]:.4f}" for k in ("loss", "val_accuracy") if k in record})
        if not bars:  # no terminal (a job scheduler's log, a pipe): a plain line per epoch shows the run lives
            log.info("epoch %d/%d: loss %.4f%s (%.1f s)", epoch, options.epochs, record.get("loss", float("nan")),
                     f" val acc {record['val_accuracy']:.3f}" if "val_accuracy" in record else "", record["seconds"])
        good = clf.model.get_weights()
    epoch_bar.close()
    if stopped and history_path is not None:
        append_epoch(history_path, StopRow(stopped=stopped, epochs_completed=len(history)))
    return FitResult(history=history, epochs_completed=len(history), steps=total_steps, stopped=stopped,
                     seconds=round(time.perf_counter() - start, 3))
