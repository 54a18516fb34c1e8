"""Mixed precision (``"precision": "mixed_float16"``): a copy of a classifier whose layers
compute in float16 and keep float32 variables (Keras's ``mixed_float16`` policy), with
the class scores in float32; its training step scales the loss (Keras's
``LossScaleOptimizer``, ``classification_models.train_step``). On a GPU with tensor
cores this roughly halves step time and activation memory; on a CPU it runs (slower)
and is how the tests exercise the path.
"""
from __future__ import annotations

import logging

import keras
import tensorflow as tf

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "mixed_float16")


def device_line() -> str:
    """What TensorFlow computes on: ``"TensorFlow runs on 1 GPU (…)"`` or on the CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "TensorFlow runs on the CPU (no GPU visible; tools/setup.sh --gpu installs the CUDA build)"
    return f"TensorFlow runs on {len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}"


def is_mixed(model) -> bool:
    """Whether any layer of ``model`` (nested models included) computes in float16."""
    return any(getattr(layer, "compute_dtype", "float32") == "float16"
               for layer in model._flatten_layers(include_self=False, recursive=True))


def with_precision(clf, precision: str):
    """``clf`` itself for ``float32``; for ``mixed_float16`` a copy with the same weights
    whose layers use the ``mixed_float16`` policy except the class-score Dense layer and
    any softmax (float32, as Keras recommends for the model's output).

    Raises:
        ValueError for another precision.
    """

    if precision == "float32":
        return clf
    if precision != "mixed_float16":
        raise ValueError(f"unknown precision {precision!r} (valid: {', '.join(PRECISIONS)})")
    if "GPU" not in device_line():
        log.warning("precision mixed_float16 on the CPU: it runs, slower than float32; it pays on a GPU")
    keep = {clf.parts.dense.name}

    def clone(layer):
        config = layer.get_config()
        out_layer = layer.name in keep or type(layer).__name__ == "Softmax"
        config["dtype"] = "float32" if out_layer else keras.DTypePolicy("mixed_float16")
        return layer.__class__.from_config(config)

    model = keras.models.clone_model(clf.model, clone_function=clone, recursive=True)
    model.set_weights(clf.model.get_weights())
    # an import cycle otherwise: classifier -> train_step -> precision
    from classification_models.classifier import Classifier

    return Classifier(model, clf.class_names, input_convention=clf.input_convention, source=clf.source,
                      **clf._layer_names)
