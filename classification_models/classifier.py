"""The classifier wrapper: forward with activations, batched CAMs, a training step
that accepts an extra loss term and per-example masks, evaluation, save/load.

Every retraining method (exp_scripts) plugs a *loss function* into the same step
instead of copying the model::

    def loss_fn(clf, batch):            # batch: dict of tensors
        acts, logits = clf.forward(batch["images"], training=True)
        ce = tf.reduce_mean(sparse_ce(batch["labels"], logits))
        return ce + penalty, {"ce": ce, "penalty": penalty}

    step = clf.make_train_step(loss_fn, optimizer)
    loss, logs = step(batch)

``batch`` always has ``images`` float32 ``[N,H,W,C]`` in [0,255] and ``labels``
int64 ``[N]``; methods add ``masks`` float32 ``[N,H,W]`` in {0,1} (1 = irrelevant),
``feature_scale`` ``[N,K]`` (selective dropout), etc.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from classification_models.cam import cams_from_activations, upsample_bilinear
from classification_models.models import GAP, LAST_CONV, LOGITS
from common.errors import UserError
from common.io import atomic_path


@dataclasses.dataclass
class CamBatch:
    """Result of ``Classifier.cams``: NumPy arrays for a whole split or image set.

    Attributes:
        probs: ``[N, C]`` class probabilities.
        cams: ``[N, H, W, C]`` (all classes) or ``[N, H, W]`` (one class per image);
            ``H, W`` = image size when upsampled, else the last-conv grid.
        activations: ``[N, h, w, K]`` last-conv activations (None if not requested).
    """

    probs: np.ndarray
    cams: np.ndarray
    activations: np.ndarray | None = None


def sparse_ce(labels, logits):
    """Per-example cross-entropy ``[N]`` from integer labels and logits."""
    import tensorflow as tf

    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def cross_entropy_loss(clf: "Classifier", batch: dict) -> tuple[Any, dict]:
    """Plain mean cross-entropy (method A and base training)."""
    import tensorflow as tf

    _, logits = clf.forward(batch["images"], training=True, feature_scale=batch.get("feature_scale"))
    ce = tf.reduce_mean(sparse_ce(batch["labels"], logits))
    return ce, {"ce": ce}


class Classifier:
    """Wraps a GAP model built by ``classification_models.models.build_model``.

    Args:
        model: the Keras model (layers ``last_conv``, ``gap``, ``logits`` by name).
        class_names: optional class names, for reports.
    """

    def __init__(self, model, class_names: list[str] | None = None):
        import keras

        self.model = model
        self.class_names = list(class_names) if class_names else None
        for name in (LAST_CONV, GAP, LOGITS):
            try:
                model.get_layer(name)
            except ValueError:
                raise UserError(f"model '{model.name}' has no layer named '{name}'; build it with classification_models") from None
        self._features = keras.Model(model.input, model.get_layer(LAST_CONV).output, name="features")
        self._gap = model.get_layer(GAP)
        self._logits = model.get_layer(LOGITS)
        try:
            self._dropout = model.get_layer("head_dropout")
        except ValueError:
            self._dropout = None
        self._cam_fn = None
        self._steps: dict = {}

    # ----- shapes and weights ---------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.model.input_shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self._logits.units)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(h, w, K)`` of the last conv layer."""
        return tuple(int(v) for v in self._features.output_shape[1:])

    def head_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense kernel ``W [K, C]`` and bias ``[C]`` as NumPy."""
        kernel, bias = self._logits.get_weights()
        return kernel, bias

    # ----- forward --------------------------------------------------------------
    def forward(self, images, training: bool = False, feature_scale=None):
        """Last-conv activations and logits in one pass.

        Args:
            images: ``[N, H, W, C]`` float32 pixels in [0, 255].
            training: batch-norm/dropout mode.
            feature_scale: optional ``[N, K]`` multipliers applied to the last-conv
                maps before pooling (selective dropout, thesis §4.4).

        Returns:
            ``(activations [N, h, w, K], logits [N, C])`` tensors.
        """
        import tensorflow as tf

        acts = self._features(images, training=training)
        pooled_from = acts
        if feature_scale is not None:
            pooled_from = acts * tf.cast(feature_scale, acts.dtype)[:, None, None, :]
        x = self._gap(pooled_from)
        if self._dropout is not None:
            x = self._dropout(x, training=training)
        return acts, self._logits(x)

    # ----- inference ------------------------------------------------------------
    @staticmethod
    def _batches(images, batch_size: int):
        """Yields float32 image batches from an array or a tf.data of (index, image, label)."""
        if isinstance(images, np.ndarray):
            for start in range(0, len(images), batch_size):
                yield np.asarray(images[start:start + batch_size], np.float32)  # no copy if float32
            return
        for element in images:
            batch = element[1] if isinstance(element, (tuple, list)) else element
            yield batch

    def predict_proba(self, images, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``[N, C]`` for an image array ``[N,H,W,C]`` or a batched tf.data."""
        import tensorflow as tf

        outs = [tf.nn.softmax(self.forward(b, training=False)[1]).numpy() for b in self._batches(images, batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.num_classes), np.float32)

    def cams(self, images, classes=None, upsample: bool = True, batch_size: int = 64,
             return_activations: bool = False) -> CamBatch:
        """Probabilities and CAMs for many images, batched (no per-image Python loop).

        Args:
            images: ``[N, H, W, C]`` array (uint8 or float pixels) or a batched tf.data
                of ``(index, image, label)``.
            classes: None -> all classes (``[N,H,W,C]``); an int -> that class for
                every image; an int array ``[N]`` -> one class per image (``[N,H,W]``).
            upsample: bilinear upsampling to the image size (else the grid size).
            batch_size: batch size when ``images`` is an array.
            return_activations: also return the last-conv activations.

        Returns:
            ``CamBatch`` of NumPy arrays.
        """
        import tensorflow as tf

        if self._cam_fn is None:
            weights = self._logits.kernel

            @tf.function(reduce_retracing=True)
            def cam_fn(x, cls, all_classes: bool, up: bool, with_acts: bool):
                acts, logits = self.forward(x, training=False)
                maps = cams_from_activations(activations=acts, weights=weights,
                                             classes=None if all_classes else cls)
                if up:
                    maps = upsample_bilinear(maps=maps, size=tf.shape(x)[1:3])
                # activations leave the graph only when asked for
                return (acts if with_acts else tf.zeros((0,))), tf.nn.softmax(logits), maps

            self._cam_fn = cam_fn
        all_classes = classes is None
        per_image = None
        if not all_classes:
            per_image = np.asarray(classes, np.int32)
        probs, maps, acts = [], [], []
        seen = 0
        for batch in self._batches(images, batch_size):
            n = int(batch.shape[0])
            if all_classes:
                cls = tf.zeros((n,), tf.int32)
            elif per_image.ndim == 0:
                cls = tf.fill((n,), int(per_image))
            else:
                cls = tf.constant(per_image[seen:seen + n])
            a, p, m = self._cam_fn(tf.cast(batch, tf.float32), cls, all_classes, upsample, return_activations)
            probs.append(p.numpy())
            maps.append(m.numpy())
            if return_activations:
                acts.append(a.numpy())
            seen += n
        if per_image is not None and per_image.ndim == 1 and seen != len(per_image):
            raise UserError(f"got {len(per_image)} classes for {seen} images")
        if not probs:
            raise UserError("no images to compute CAMs for")
        return CamBatch(
            probs=np.concatenate(probs),
            cams=np.concatenate(maps),
            activations=np.concatenate(acts) if return_activations else None,
        )

    # ----- evaluation -----------------------------------------------------------
    def evaluate_arrays(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> dict:
        """Accuracy, per-class precision/recall/F1 (scikit-learn) and confusion matrix."""
        from sklearn.metrics import classification_report, confusion_matrix

        probs = self.predict_proba(images, batch_size)
        preds = probs.argmax(axis=1)
        labels = np.asarray(labels)
        n_cls = self.num_classes
        names = self.class_names or [str(c) for c in range(n_cls)]
        report = classification_report(labels, preds, labels=list(range(n_cls)), target_names=names,
                                       output_dict=True, zero_division=0)
        return {
            "accuracy": float((preds == labels).mean()) if len(labels) else float("nan"),
            "n": int(len(labels)),
            "report": report,
            "confusion": confusion_matrix(labels, preds, labels=list(range(n_cls))).tolist(),
        }

    def evaluate(self, dataset, split: str, batch_size: int = 256) -> dict:
        """``evaluate_arrays`` on a split of a ``datasets.Dataset``."""
        arr = dataset.arrays(split)
        return self.evaluate_arrays(arr.images, arr.labels, batch_size)

    # ----- training -------------------------------------------------------------
    def make_train_step(self, loss_fn: Callable = cross_entropy_loss, optimizer=None, strategy=None) -> Callable:
        """A compiled training step ``step(batch: dict) -> (loss, logs)``.

        The model's own regularisation losses are added to ``loss_fn``'s value.

        Args:
            loss_fn: ``loss_fn(clf, batch) -> (scalar loss, logs dict of scalars)``;
                the loss is a mean over the (per-replica) batch.
            optimizer: a Keras optimizer (built on the model's variables if needed).
            strategy: optional ``tf.distribute.Strategy`` the model was built under;
                then ``step`` takes a *distributed* batch
                (``strategy.experimental_distribute_dataset``), each replica's loss is
                divided by the number of replicas (the optimizer sums gradients across
                replicas) and the returned loss/logs are replica means.
        """
        import tensorflow as tf

        if optimizer is None:
            raise ValueError("make_train_step needs an optimizer")
        key = (id(loss_fn), id(optimizer), id(strategy))
        if key in self._steps:
            return self._steps[key]
        variables = self.model.trainable_variables
        replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)

        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss, logs = loss_fn(self, batch)
                total = loss + tf.add_n(self.model.losses) if self.model.losses else loss
                scaled = total / replicas if replicas > 1 else total
            grads = tape.gradient(scaled, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return total, logs

        if strategy is None:
            step = tf.function(replica_step, reduce_retracing=True)
        else:
            mean = tf.distribute.ReduceOp.MEAN

            @tf.function(reduce_retracing=True)
            def step(batch):
                total, logs = strategy.run(replica_step, args=(batch,))
                return (strategy.reduce(mean, total, axis=None),
                        {k: strategy.reduce(mean, v, axis=None) for k, v in logs.items()})

        self._steps[key] = step
        return step

    # ----- persistence ----------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Saves the model as ``.keras`` atomically."""
        path = Path(path)
        if path.suffix != ".keras":
            raise UserError(f"model path '{path}' must end in .keras")
        with atomic_path(path, suffix=".keras") as tmp:
            self.model.save(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, class_names: list[str] | None = None) -> "Classifier":
        """Loads a ``.keras`` model in safe mode (no pickle, no lambdas)."""
        import keras

        path = Path(path)
        if not path.exists():
            raise UserError(f"model file '{path}' does not exist")
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except (ValueError, OSError) as exc:
            raise UserError(f"cannot load model '{path}': {str(exc).splitlines()[0]}") from exc
        return cls(model, class_names)


def is_finite(value) -> bool:
    """True if a scalar loss value is finite."""
    return math.isfinite(float(value))
