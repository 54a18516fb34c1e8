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
import logging
import os
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from tqdm.auto import tqdm

from classification_models.cam import cams_from_activations, gradcam_from_gradients, upsample_bilinear
from classification_models.input_convention import InputConvention, to_model_pixels
from classification_models.model_file import load_keras_model
from classification_models.own_model import find_parts
from classification_models.reports import split_report
from classification_models.train_step import build_train_step
from common.errors import UserError
from common.io import atomic_path
from common.logs import progress_bars

log = logging.getLogger(__name__)


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
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def cross_entropy_loss(clf: "Classifier", batch: dict) -> tuple[Any, dict]:
    """Plain mean cross-entropy (method A and base training)."""
    _, logits = clf.forward(batch["images"], training=True, feature_scale=batch.get("feature_scale"))
    ce = tf.reduce_mean(sparse_ce(batch["labels"], logits))
    return ce, {"ce": ce}


class Classifier:
    """Wraps a trained Keras classifier whose last conv feature map feeds a Dense head.

    Our own ``vgg_gap`` nets (``classification_models.models.build_model``) and users'
    models alike: ``classification_models.own_model.find_parts`` finds the feature map
    (also inside nested backbones), the head and the logits (the last Dense layer's
    pre-activation output), and the classifier computes ``forward`` through a view that
    shares the model's layers, so training it trains ``model`` itself.

    Args:
        model: the Keras model (its output: softmax probabilities or logits).
        class_names: optional class names, for reports.
        input_convention: how our [0, 255] pixels become the model's input
            (``input_convention.InputConvention``; default: unchanged, same channel count).
        feature_layer: name (or ``outer/inner`` path) of the feature-map layer
            (default: found automatically).
        logits_layer: name of the Dense layer giving the class scores (default: found).
        source: names the model in errors (e.g. its file).
    """

    def __init__(self, model, class_names: list[str] | None = None, *, input_convention=None,
                 feature_layer: str | None = None, logits_layer: str | None = None, source: str | None = None):
        self.model = model
        self.class_names = list(class_names) if class_names else None
        self.source = source or f"model '{model.name}'"
        self._layer_names = {"feature_layer": feature_layer, "logits_layer": logits_layer}
        self.parts = find_parts(model, feature_layer=feature_layer, logits_layer=logits_layer, source=self.source)
        channels = int(model.inputs[0].shape[-1])
        self.input_convention = input_convention or InputConvention(data_channels=channels, model_channels=channels)
        self._features = self.parts.features
        self._head = list(self.parts.head)
        self._logits = self.parts.dense
        self._gap = self._head[0] if self.parts.pooled else None
        self._cam_fn = None
        self._steps: dict = {}

    # ----- shapes and weights ---------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the images the classifier takes (the data set's channels)."""
        h, w = (int(v) for v in self.model.inputs[0].shape[1:3])
        return h, w, int(self.input_convention.data_channels)

    @property
    def num_classes(self) -> int:
        return int(self._logits.units)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(h, w, K)`` of the feature map (the last conv layer)."""
        return tuple(int(v) for v in self._features.output_shape[1:])

    @property
    def has_cam_head(self) -> bool:
        """True when the head is global average pooling -> [dropout] -> Dense (CAM weights exist)."""
        return bool(self.parts.pooled)

    def cam_kernel(self, what: str = "this method"):
        """The Dense kernel variable ``[K, C]`` of a pooled head (the CAM weights).

        Raises:
            UserError naming the model and ``what`` when the head is not pooled.
        """
        if not self.parts.pooled:
            head = " -> ".join(type(layer).__name__ for layer in self._head + [self._logits])
            raise UserError(f"{what} needs CAM weights, but {self.source} has no global-average-pooling head "
                            f"({head}); its maps are Grad-CAM")
        return self._logits.kernel

    def head_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense kernel ``W [K, C]`` and bias ``[C]`` as NumPy (pooled heads only)."""
        kernel = np.asarray(self.cam_kernel("the CAM head weights")).astype(np.float32)
        bias = np.asarray(self._logits.bias) if self._logits.use_bias else np.zeros((self.num_classes,), np.float32)
        return kernel, bias

    def describe(self) -> dict:
        """Parts, maps kind and input convention, for train results and summaries."""
        return {**self.parts.describe(), "input": self.input_convention.to_dict()}

    def clone(self) -> "Classifier":
        """A trainable copy with identical weights, parts and input convention."""
        model = keras.models.clone_model(self.model)
        model.set_weights(self.model.get_weights())
        return Classifier(model, self.class_names, input_convention=self.input_convention,
                          source=self.source, **self._layer_names)

    # ----- forward --------------------------------------------------------------
    def model_input(self, images):
        """Our pixels ``[N, H, W, C]`` in [0, 255] -> the model's input convention (differentiable)."""
        return to_model_pixels(images, convention=self.input_convention)

    def head_logits(self, activations, training: bool = False, feature_scale=None):
        """Logits ``[N, C]`` from feature maps ``[N, h, w, K]`` through the model's head;
        the last Dense layer's pre-activation (softmax left out)."""
        x = activations
        if feature_scale is not None:
            x = x * tf.cast(feature_scale, x.dtype)[:, None, None, :]
        layers = self._head
        if self.parts.pooled:
            x = tf.reduce_mean(x, axis=[1, 2])
            layers = layers[1:]
        for layer in layers:
            x = layer(x, training=training)
        if x.dtype == tf.float16:  # a mixed-precision head: class scores in float32
            x = tf.cast(x, tf.float32)
        logits = tf.matmul(x, tf.cast(self._logits.kernel, x.dtype))
        if self._logits.use_bias:
            logits = logits + tf.cast(self._logits.bias, x.dtype)
        return logits

    def forward(self, images, training: bool = False, feature_scale=None):
        """Feature-map activations and logits in one pass.

        Args:
            images: ``[N, H, W, C]`` float32 pixels in [0, 255].
            training: batch-norm/dropout mode.
            feature_scale: optional ``[N, K]`` multipliers applied to the feature maps
                before the head (selective dropout, thesis §4.4).

        Returns:
            ``(activations [N, h, w, K], logits [N, C])`` tensors.
        """
        acts = self._features(self.model_input(images), training=training)
        if acts.dtype == "float16":  # a mixed-precision model: maps, penalties and losses in float32
            acts = ops.cast(acts, "float32")
        return acts, self.head_logits(acts, training=training, feature_scale=feature_scale)

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
        """Class probabilities ``[N, C]`` of an array ``[N,H,W,C]`` or a batched tf.data (compiled pass)."""
        outs = [tf.nn.softmax(self._predict_logits(b)).numpy() for b in self._batches(images, batch_size)]
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
        if self._cam_fn is None:
            weights = self._logits.kernel
            pooled = self.parts.pooled

            @tf.function(reduce_retracing=True)
            def cam_fn(x, cls, all_classes: bool, up: bool, with_acts: bool):
                if pooled:
                    acts, logits = self.forward(x, training=False)
                    maps = cams_from_activations(activations=acts, weights=weights,
                                                 classes=None if all_classes else cls)
                else:
                    acts, logits, maps = self._gradcam(x, None if all_classes else cls)
                if up:
                    maps = upsample_bilinear(maps=maps, size=tf.shape(x)[1:3])
                # activations leave the graph only when asked for
                return (acts if with_acts else tf.zeros((0,))), tf.nn.softmax(logits), maps

            self._cam_fn = cam_fn
        all_classes = classes is None
        per_image = None if all_classes else np.asarray(classes, np.int32)
        probs, maps, acts, seen = [], [], [], 0
        n_batches = -(-len(images) // batch_size) if isinstance(images, np.ndarray) else None  # a bar for a split
        for batch in tqdm(self._batches(images, batch_size), total=n_batches, desc="CAMs", unit="batch", leave=False,
                          disable=not progress_bars(log) or (n_batches is not None and n_batches <= 4)):
            n = int(batch.shape[0])
            if all_classes:
                cls = tf.zeros((n,), tf.int32)
            elif per_image.ndim == 0:
                cls = tf.fill((n,), int(per_image))
            else:
                cls = tf.constant(per_image[seen:seen + n])
            a, p, m = self._cam_fn(tf.cast(batch, tf.float32), cls, all_classes, upsample, return_activations)
            probs.append(p.numpy())
            if n_batches is None:
                maps.append(m.numpy())
            else:  # a split: one array filled in place, no second copy to concatenate
                maps = maps or [np.empty((len(images),) + tuple(m.shape[1:]), np.float32)]
                maps[0][seen:seen + n] = m.numpy()
            if return_activations:
                acts.append(a.numpy())
            seen += n
        if per_image is not None and per_image.ndim == 1 and seen != len(per_image):
            raise UserError(f"got {len(per_image)} classes for {seen} images")
        if not probs:
            raise UserError("no images to compute CAMs for")
        return CamBatch(
            probs=np.concatenate(probs),
            cams=maps[0] if n_batches is not None else np.concatenate(maps),
            activations=np.concatenate(acts) if return_activations else None,
        )

    def _gradcam(self, images, classes):
        """``(activations, logits, Grad-CAM maps)`` for heads without CAM weights
        (``cam.gradcam_from_gradients``; all classes when ``classes`` is None)."""

        acts = self._features(self.model_input(images), training=False)
        n_cls = self.num_classes
        with tf.GradientTape(persistent=classes is None) as tape:
            tape.watch(acts)
            logits = self.head_logits(acts, training=False)
            if classes is None:
                targets = [tf.reduce_sum(logits[:, c]) for c in range(n_cls)]
            else:
                targets = [tf.reduce_sum(tf.gather(logits, tf.cast(classes, tf.int32), batch_dims=1))]
        maps = [gradcam_from_gradients(activations=acts, gradients=tape.gradient(t, acts)) for t in targets]
        del tape
        return acts, logits, (tf.stack(maps, axis=-1) if classes is None else maps[0])

    # ----- evaluation -----------------------------------------------------------
    def evaluate_arrays(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> dict:
        """Accuracy, per-class precision/recall/F1 (scikit-learn) and confusion matrix."""
        return self.report_from_probs(self.predict_proba(images, batch_size), labels)

    def report_from_probs(self, probs: np.ndarray, labels) -> dict:
        """``evaluate_arrays``'s dict from already computed probabilities."""
        return split_report(probs, labels, class_names=self.class_names or [str(c) for c in range(self.num_classes)])

    def evaluate(self, dataset, split: str, batch_size: int = 64) -> dict:
        """``evaluate_arrays`` on a split of a ``datasets.Dataset``, streamed in batches
        (``dataset.split``: from the TFRecord shards for converted data sets), so memory
        does not grow with the split."""
        probs, labels = [], []
        for _, images, y in dataset.split(split, batch_size=batch_size):
            probs.append(tf.nn.softmax(self._predict_logits(images)).numpy())
            labels.append(y.numpy())
        if not probs:
            probs, labels = [np.zeros((0, self.num_classes), np.float32)], [np.zeros((0,), np.int64)]
        return self.report_from_probs(np.concatenate(probs), np.concatenate(labels))

    def _predict_logits(self, images):
        """Logits of one batch by a compiled inference pass (traced once per batch shape)."""
        if getattr(self, "_logits_fn", None) is None:
            self._logits_fn = tf.function(lambda x: self.forward(x, training=False)[1], reduce_retracing=True)
        return self._logits_fn(tf.cast(images, tf.float32))

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
        if optimizer is None:
            raise ValueError("make_train_step needs an optimizer")
        key = (id(loss_fn), id(optimizer), id(strategy))
        if key not in self._steps:
            self._steps[key] = build_train_step(self, loss_fn=loss_fn, optimizer=optimizer, strategy=strategy)
        return self._steps[key]

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
    def load(cls, path: str | os.PathLike, class_names: list[str] | None = None, **kwargs) -> "Classifier":
        """Loads a ``.keras`` model in safe mode (no pickle, no lambdas).

        ``kwargs`` go to the constructor (``input_convention``, ``feature_layer``,
        ``logits_layer``); errors name the file.
        """
        model = load_keras_model(path)
        kwargs.setdefault("source", f"model '{path}'")
        return cls(model, class_names, **kwargs)
