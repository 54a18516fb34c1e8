"""The learned inpainter's custom Keras layers, registered for safe-mode ``.keras`` loading.

A module of their own so that loading a saved inpainter (``image_generator.user_model.
load_inpainting_model``) needs the layers only, not the trainer
(``image_generator.learned``).
"""
from __future__ import annotations

import keras

PACKAGE = "image_generator"


@keras.saving.register_keras_serializable(package=PACKAGE)
class GatedConv2D(keras.layers.Layer):
    """Gated convolution: ``act(conv_f(x)) * sigmoid(conv_g(x))`` (Yu et al. 2019).

    The learned gate lets the network treat hole and known pixels differently at every
    layer (what partial convolutions hard-code).
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1, dilation_rate: int = 1,
                 activation: str = "elu", seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.activation_name = activation
        self.seed = seed
        self.conv = keras.layers.Conv2D(
            2 * self.filters, self.kernel_size, strides=self.strides, dilation_rate=self.dilation_rate,
            padding="same", kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="conv",
        )
        self.act = keras.activations.get(activation)

    def build(self, input_shape):
        self.conv.build(input_shape)
        super().build(input_shape)

    def call(self, x):
        y = self.conv(x)
        feat, gate = keras.ops.split(y, 2, axis=-1)
        return self.act(feat) * keras.ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.strides
        return (n, None if h is None else -(-h // s), None if w is None else -(-w // s), self.filters)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                   dilation_rate=self.dilation_rate, activation=self.activation_name, seed=self.seed)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class Composite(keras.layers.Layer):
    """``fill * mask + image * (1 - mask)``: known pixels pass through (inputs in [0, 1])."""

    def call(self, inputs):
        fill, image, mask = inputs
        return fill * mask + image * (1.0 - mask)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
