"""Any Keras classifier as a CAM model: find the feature map and the head; freeze layers.

A user's model (``keras.applications`` backbones nested in the usual fine-tuning
pattern ``Sequential([Rescaling, ResNet50(include_top=False), GlobalAveragePooling2D(),
Dropout, Dense(C, softmax)])``, a hand-written functional model, or one of our own
``vgg_gap`` nets) is read, never rebuilt: ``find_parts`` walks the graph back from the
output (or from a named logits layer) through single-input layers — entering nested
models — until it reaches the 4-D feature map (or a named feature layer). It returns

* ``features``: a functional *view* ``image -> feature map [N, h, w, K]`` that calls the
  user's own layers (shared weights: training through it trains the user's model);
* ``head``: the layers between the feature map and the last Dense layer (pooling,
  dropout, flatten, hidden Dense...) and that Dense layer, whose *pre-activation* output
  is used as logits when the model ends in softmax.

When the head is ``GlobalAveragePooling2D -> [Dropout] -> Dense`` the model has CAM
weights (``CAM_c = Σ_k W[k, c]·A_k``); otherwise (``Flatten -> Dense``, hidden layers)
maps are Grad-CAM (``h·w·Σ_k mean(∂logit_c/∂A_k)·A_k``, which equals the CAM for a
pooled head) and methods that need CAM weights refuse the model.

The *input convention* (which pixel range the model expects) is in
``classification_models.input_convention``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from common.errors import UserError

CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Conv1D", "Conv3D")
PASS_THROUGH_TYPES = ("Dropout", "GaussianDropout", "GaussianNoise", "AlphaDropout", "SpatialDropout1D",
                      "SpatialDropout2D", "ActivityRegularization")


# ----- finding the parts -------------------------------------------------------------
@dataclasses.dataclass
class ModelParts:
    """What ``find_parts`` found.

    Attributes:
        features: ``keras.Model`` view: model input -> feature map ``[N, h, w, K]``.
        feature_layer: ``/``-joined path of the layer producing the feature map.
        head: layers between the feature map and ``dense`` (applied in order).
        dense: the last Dense layer (its pre-activation output is the logits).
        output_activation: ``"softmax"`` or ``"linear"`` (what the model's output is).
        pooled: head is ``GlobalAveragePooling2D -> [Dropout]`` (CAM weights exist).
    """

    features: Any
    feature_layer: str
    head: list
    dense: Any
    output_activation: str
    pooled: bool

    def describe(self) -> dict:
        """The ``model_parts`` entry of a train result."""
        return {"feature_layer": self.feature_layer, "head": [layer.name for layer in self.head],
                "logits_layer": self.dense.name, "output_activation": self.output_activation,
                "maps": "cam" if self.pooled else "grad_cam"}


def iter_layers(model):
    """Every layer of ``model`` in order, nested models' layers in place (depth first)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def find_layer(model, name: str, *, source: str, what: str):
    """The layer called ``name`` at any depth (``a/b`` addresses a layer inside nested model ``a``)."""
    if "/" not in name:
        names = []
        for layer in _all_layers(model):
            if layer.name == name:
                return layer
            names.append(layer.name)
        shown = ", ".join(names[-8:])
        raise UserError(f"{source}: {what} '{name}' does not exist in model '{model.name}' "
                        f"(its last layers: {shown})")
    scope = model
    parts = name.split("/")
    for i, part in enumerate(parts):
        found = next((layer for layer in scope.layers if layer.name == part), None)
        if found is None:
            raise UserError(f"{source}: {what} '{name}' does not exist in model '{model.name}'")
        if i < len(parts) - 1 and not isinstance(found, keras.Model):
            raise UserError(f"{source}: {what} '{name}': '{part}' is not a nested model")
        scope = found
    return scope


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _history(tensor):
    op, node_index, tensor_index = tensor._keras_history
    return op, op._inbound_nodes[node_index], tensor_index


def _single_input(node, op, source: str):
    inputs = list(node.input_tensors)
    if len(inputs) != 1:
        raise UserError(f"{source}: layer '{op.name}' takes {len(inputs)} inputs; the path from the feature map "
                        f"to the logits must be a chain of single-input layers (name the feature layer: "
                        f"layers.features)")
    return inputs[0]


def find_parts(model, *, feature_layer: str | None = None, logits_layer: str | None = None,
               source: str = "model") -> ModelParts:
    """Finds the feature map, the head and the logits layer of ``model`` (see module doc).

    Args:
        model: a built ``keras.Model`` (Sequential or functional, nested models allowed).
        feature_layer: name (or ``outer/inner`` path) of the layer whose output is the
            feature map; default: the first 4-D tensor walking back from the output.
        logits_layer: name of the Dense layer giving the logits; default: the Dense layer
            feeding the model's only output.
        source: names the model in errors (e.g. the file).

    Raises:
        UserError: a named layer does not exist; several outputs; a branching head; no
            Dense layer at the end; an activation other than softmax/linear; no conv
            feature map.
    """
    if len(model.inputs) != 1:
        raise UserError(f"{source}: the model takes {len(model.inputs)} inputs; only single-image models are supported")
    target = find_layer(model, feature_layer, source=source, what="feature layer") if feature_layer else None
    if logits_layer:
        dense = find_layer(model, logits_layer, source=source, what="logits layer")
        if type(dense).__name__ != "Dense":
            raise UserError(f"{source}: logits layer '{logits_layer}' is a {type(dense).__name__}, not a Dense layer")
        tensor = dense.output
    else:
        if len(model.outputs) != 1:
            raise UserError(f"{source}: the model has {len(model.outputs)} outputs; name the Dense layer giving "
                            f"the class scores (layers.logits)")
        tensor = model.outputs[0]

    chain = []          # layers from the output back to the feature map
    stack = []          # (nested model, its node in the enclosing graph)
    path = [model]      # enclosing models, outermost first
    while True:
        op, node, index = _history(tensor)
        if isinstance(op, keras.layers.InputLayer):
            if not stack:
                what = f"feature layer '{feature_layer}'" if target is not None else "a 4-D feature map"
                raise UserError(f"{source}: no conv feature map: walking back from the output reached the input "
                                f"without {what}")
            nested, outer_node = stack.pop()
            path.pop()
            tensor = _single_input(outer_node, nested, source)
            continue
        if target is not None:
            stop = op is target
        else:
            stop = len(tensor.shape) == 4
        if stop:
            break
        if isinstance(op, keras.Model):  # enter the nested model, walk on inside it
            stack.append((op, node))
            path.append(op)
            tensor = op.outputs[index]
            continue
        chain.append(op)
        tensor = _single_input(node, op, source)

    if len(tensor.shape) != 4:
        raise UserError(f"{source}: feature layer '{feature_layer}' outputs shape {tuple(tensor.shape)}, "
                        f"not a [N, h, w, K] feature map")
    features = _feature_view(model, stack, tensor)
    if not any(type(l).__name__ in CONV_TYPES for l in iter_layers(features)):
        raise UserError(f"{source}: no conv feature map: no convolution comes before "
                        f"'{_history(tensor)[0].name}' {tuple(tensor.shape)}")
    head = list(reversed(chain))
    activation = "linear"
    while head and (type(head[-1]).__name__ == "Softmax" or (
            type(head[-1]).__name__ == "Activation" and _activation_name(head[-1]) == "softmax")):
        head.pop()
        activation = "softmax"
    if not head or type(head[-1]).__name__ != "Dense":
        last = head[-1].name if head else "(none)"
        raise UserError(f"{source}: the layer giving the class scores is '{last}', not a Dense layer "
                        f"(name one with layers.logits)")
    dense = head.pop()
    dense_act = _activation_name(dense)
    if dense_act == "softmax":
        activation = "softmax"
    elif dense_act != "linear":
        raise UserError(f"{source}: Dense layer '{dense.name}' has activation '{dense_act}'; "
                        f"only softmax or linear class scores are supported")
    pooled = bool(head) and type(head[0]).__name__ == "GlobalAveragePooling2D" \
        and not head[0].keepdims and all(type(l).__name__ in PASS_THROUGH_TYPES for l in head[1:])
    producer = _history(tensor)[0]
    name = "/".join([m.name for m in path[1:]] + [producer.name])
    return ModelParts(features=features, feature_layer=name, head=head, dense=dense,
                      output_activation=activation, pooled=pooled)


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) or str(act)
    return "linear" if name in ("linear", "None") else name


def _feature_view(model, stack, tensor):
    """``model input -> tensor`` where ``tensor`` lives inside the nested models of ``stack``."""
    if not stack:
        return keras.Model(model.inputs, tensor, name="features")
    nested, outer_node = stack[-1]
    inner = keras.Model(nested.inputs, tensor, name=f"{nested.name}_features")
    prefix = _feature_view(model, stack[:-1], _single_input(outer_node, nested, "model"))
    inp = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
    return keras.Model(inp, inner(prefix(inp)), name="features")


# ----- freezing ------------------------------------------------------------------------
def freeze(model, *, up_to: str | None = None, batch_norm: str = "train", source: str = "freeze") -> dict:
    """Freezes every layer up to and including ``up_to`` (flattened order, nested models
    entered) and, with ``batch_norm="inference"``, every batch-norm layer (Keras runs a
    non-trainable BatchNormalization in inference mode: its statistics stay fixed).

    Returns:
        ``{"frozen_up_to", "batch_norm", "trainable_weights", "non_trainable_weights",
        "trainable_layers"}`` for the run summary.
    """
    layers = list(iter_layers(model))
    if up_to is not None:
        names = [l.name for l in layers]
        if up_to not in names:
            raise UserError(f"{source}: up_to layer '{up_to}' does not exist in model '{model.name}'")
        last = names.index(up_to)
        for layer in layers[:last + 1]:
            layer.trainable = False
    if batch_norm == "inference":
        for layer in layers:
            if type(layer).__name__ == "BatchNormalization":
                layer.trainable = False
    return trainable_summary(model, up_to=up_to, batch_norm=batch_norm)


def freeze_args(freeze) -> dict:
    """``{"up_to", "batch_norm"}`` of a ``Freeze`` config (or the defaults for None)."""
    if freeze is None:
        return {"up_to": None, "batch_norm": "train"}
    return {"up_to": freeze.up_to, "batch_norm": freeze.batch_norm}


def trainable_summary(model, *, up_to: str | None = None, batch_norm: str = "train") -> dict:
    """Counts of trainable / frozen parameters and layers, and the first trainable layer."""
    def count(vs):
        return int(sum(int(np.prod(v.shape)) for v in vs))

    layers = [l for l in iter_layers(model) if l.weights]
    trainable = [l.name for l in layers if l.trainable and l.trainable_weights]
    return {"frozen_up_to": up_to, "batch_norm": batch_norm,
            "trainable_weights": count(model.trainable_weights),
            "non_trainable_weights": count(model.non_trainable_weights),
            "trainable_layers": len(trainable), "layers_with_weights": len(layers),
            "first_trainable_layer": trainable[0] if trainable else None}
