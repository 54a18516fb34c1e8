"""A small learned, stochastic inpainter trained on the data set itself (thesis §4.2).

The thesis used a pretrained contextual-attention network (Yu et al. 2018) that cannot
be fetched offline and gave one deterministic fill. This module trains a small U-Net
of *gated convolutions* (Yu et al. 2019, "free-form inpainting") on the training split:

* input: ``image * (1 - mask)``, ``mask`` and a noise channel, average-pooled to the
  bottleneck (H/4), so the noise changes the fill's structure rather than adding speckle;
* masks: random free-form strokes and boxes (:func:`random_masks`);
* loss: L1 inside the hole + 0.1·L1 outside + a mode-seeking diversity term
  (Mao et al. 2019): two noise draws ``z1, z2`` per image and a hinge
  ``max(0, target - mean_hole|G(z1) - G(z2)| / mean|z1 - z2|)`` that keeps samples apart
  (pure L1 alone collapses to one median fill and ignores the noise).

The saved model follows the adapter signature of ``image_generator.user_model``
(``[image, mask, noise] -> fill``), so :class:`LearnedInpainter` is that adapter with
another name. Its custom layers (``image_generator.inpainter_layers``) are registered for
safe-mode ``.keras`` loading.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import cv2
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from classification_models.training import make_optimizer
from common.errors import UserError
from common.seeding import set_seed
from image_generator.inpainter_layers import Composite, GatedConv2D
from image_generator.user_model import UserModelGenerator


def build_inpainter(*, image_shape, base_filters: int = 24, seed: int = 0):
    """The gated-conv U-Net.

    Args:
        image_shape: ``(H, W, C)``; H and W divisible by 4 (the model accepts any such size).
        base_filters: filters of the first level (then 2× and 4×).
        seed: initialiser seed.

    Returns:
        ``keras.Model([image, mask, noise]) -> fill`` following
        ``image_generator.user_model`` 's signature (output composited: known pixels
        equal the input).
    """
    h, w, c = (int(v) for v in image_shape)
    if h % 4 or w % 4:
        raise UserError(f"the learned inpainter needs image sides divisible by 4, got {h}×{w}")
    f = int(base_filters)
    counter = iter(range(seed * 1000, seed * 1000 + 1000))

    def G(x, filters, k=3, s=1, d=1, name=None):
        return GatedConv2D(filters, k, strides=s, dilation_rate=d, seed=next(counter), name=name)(x)

    # spatial size left open: the same weights train on patches and run on whole images
    image = keras.Input((None, None, c), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    noise = keras.Input((None, None, 1), name="noise")
    # the noise enters only at the bottleneck (pooled to H/4): per-pixel noise at the input
    # let the network meet the diversity term with speckle instead of different structure
    x = layers.Concatenate(name="in_concat")([image, mask])
    e1 = G(x, f, 3, name="enc1")                                   # H
    e2 = G(e1, 2 * f, 3, 2, name="down1")                          # H/2
    b = G(e2, 4 * f, 3, 2, name="down2")                           # H/4
    zb = layers.AveragePooling2D(4, name="noise_pool")(noise)
    zb = layers.Rescaling(4.0, name="noise_scale")(zb)  # pooled N(0,1) has std 1/4
    b = layers.Concatenate(name="bottleneck_noise")([b, zb])
    b = G(b, 4 * f, d=2, name="mid1")
    b = G(b, 4 * f, d=4, name="mid2")
    u2 = layers.UpSampling2D(2, interpolation="nearest", name="up2")(b)
    u2 = G(layers.Concatenate(name="skip2")([u2, e2]), 2 * f, name="dec2")
    u1 = layers.UpSampling2D(2, interpolation="nearest", name="up1")(u2)
    u1 = G(layers.Concatenate(name="skip1")([u1, e1]), f, name="dec1")
    # linear output (clipped to [0, 1] by the adapter): a sigmoid saturates on flat
    # backgrounds, and two saturated draws are identical, which kills the diversity gradient
    out = layers.Conv2D(c, 3, padding="same", activation="linear",
                        kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="to_image")(u1)
    out = Composite(name="fill")([out, image, mask])
    return keras.Model([image, mask, noise], out, name="gated_unet_inpainter")


# ----- training masks -------------------------------------------------------------------
def random_masks(rng: np.random.Generator, n: int, h: int, w: int, *, box_share: float = 0.4) -> np.ndarray:
    """Random hole masks for training: free-form strokes or boxes.

    Args:
        rng: NumPy generator.
        n, h, w: number and size.
        box_share: share of box masks (the rest are 1-4 thick random-walk strokes).

    Returns:
        uint8 ``[n, h, w]`` in {0, 255}; holes cover roughly 5-40 % of the image.
    """
    s = min(h, w)
    out = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        m = out[i]
        if rng.random() < box_share:
            bh = int(rng.integers(max(2, s // 8), max(3, s // 2) + 1))
            bw = int(rng.integers(max(2, s // 8), max(3, s // 2) + 1))
            y0 = int(rng.integers(0, h - bh + 1))
            x0 = int(rng.integers(0, w - bw + 1))
            m[y0:y0 + bh, x0:x0 + bw] = 255
        else:
            for _ in range(int(rng.integers(1, 5))):
                x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
                thick = int(rng.integers(max(1, s // 16), max(2, s // 6) + 1))
                for _ in range(int(rng.integers(2, 6))):
                    angle = rng.uniform(0, 2 * np.pi)
                    length = rng.uniform(s / 8, s / 3)
                    nx = int(np.clip(x + length * np.cos(angle), 0, w - 1))
                    ny = int(np.clip(y + length * np.sin(angle), 0, h - 1))
                    cv2.line(m, (x, y), (nx, ny), 255, thick)
                    x, y = nx, ny
        if not m.any():
            m[h // 4:h // 2, w // 4:w // 2] = 255
    return out


# ----- training ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InpainterTrainParams:
    """Training settings of the inpainter.

    Attributes:
        steps: optimiser steps.
        batch_size: images per step (each seen with two noise draws).
        crop: train on random ``crop × crop`` patches (the network is fully
            convolutional; patches cut the cost ~(H/crop)² at the same step count);
            0 = whole images. Must be divisible by 4.
        lr: Adam learning rate.
        base_filters: U-Net width.
        diversity_weight: weight of the mode-seeking hinge (> 1 so it can beat the L1
            pull toward the single median fill).
        diversity_target: hinge target for ``mean_hole|G(z1)-G(z2)| / mean|z1-z2|`` ([0,1] pixel units).
        seed: seeds weights, batches, masks and noise.
    """

    steps: int = 1500
    batch_size: int = 16
    crop: int = 48
    lr: float = 2e-3
    base_filters: int = 16
    diversity_weight: float = 2.0
    diversity_target: float = 0.05
    seed: int = 0

    def __post_init__(self):
        for key, low in (("steps", 1), ("batch_size", 1), ("base_filters", 1), ("crop", 0)):
            if int(getattr(self, key)) < low:
                raise UserError(f"inpainter training: {key} must be >= {low}, got {getattr(self, key)!r}")
        if self.crop % 4:
            raise UserError(f"inpainter training: crop must be divisible by 4, got {self.crop}")
        for key in ("lr", "diversity_weight", "diversity_target"):
            if not float(getattr(self, key)) >= 0:
                raise UserError(f"inpainter training: {key} must be >= 0, got {getattr(self, key)!r}")


def inpainting_losses(*, images, masks, fill1, fill2, z1, z2, diversity_weight: float, diversity_target: float):
    """The training objective as a pure function (TF tensors).

    ``total = mean(L1_hole(G(z1)), L1_hole(G(z2))) + w · max(0, target − d_img/d_z)`` with
    ``d_img = mean_hole|G(z1) − G(z2)|`` and ``d_z = mean|z1 − z2|`` (mode seeking,
    Mao et al. 2019, as a hinge so the diversity settles at ``target``).

    Args:
        images: ``[N,H,W,C]`` in [0,1]; masks ``[N,H,W,1]`` in {0,1} (1 = hole).
        fill1, fill2: network outputs ``[N,H,W,C]`` for noise ``z1``, ``z2`` ``[N,H,W,1]``.

    Returns:
        dict with ``total``, ``hole_l1`` (mean over both draws), ``mode_seeking`` (d_img/d_z).
    """
    c = tf.cast(tf.shape(images)[-1], tf.float32)
    area = tf.reduce_sum(masks) * c + 1e-6
    hole1 = tf.reduce_sum(tf.abs(fill1 - images) * masks) / area
    hole2 = tf.reduce_sum(tf.abs(fill2 - images) * masks) / area
    hole = 0.5 * (hole1 + hole2)
    d_img = tf.reduce_sum(tf.abs(fill1 - fill2) * masks) / area
    d_z = tf.reduce_mean(tf.abs(z1 - z2)) + 1e-6
    ms = d_img / d_z
    total = hole + diversity_weight * tf.nn.relu(diversity_target - ms)
    return {"total": total, "hole_l1": hole, "mode_seeking": ms}


def train_inpainter(images: np.ndarray, *, params: InpainterTrainParams, log_every: int = 100,
                    log: Callable[[dict], None] | None = None, model=None):
    """Trains the inpainter on ``images`` (random free-form/box holes, random patches).

    Args:
        images: uint8 ``[N, H, W, C]`` training images.
        params: ``InpainterTrainParams``.
        log_every: steps between history records.
        log: called with each history record (``step``, ``hole_l1``, ``mode_seeking``,
            ``total``, ``seconds``).
        model: continue training this model instead of building one.

    Returns:
        ``(model, history list of dicts)``; the model takes whole ``[H, W]`` images.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise UserError(f"inpainter training needs uint8 images [N,H,W,C], got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    crop = params.crop if 0 < params.crop < min(h, w) else 0
    ph, pw = (crop, crop) if crop else (h, w)
    set_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    if model is None:
        model = build_inpainter(image_shape=(h, w, c), base_filters=params.base_filters, seed=params.seed)
    trainer = model  # size-free (fully convolutional): trains on patches, runs on whole images
    opt = make_optimizer("adam", params.lr)
    bank = random_masks(np.random.default_rng(params.seed + 1), min(4096, max(256, 4 * params.batch_size)), ph, pw)
    data = images.astype(np.float32) / 255.0
    weights = dict(diversity_weight=params.diversity_weight, diversity_target=params.diversity_target)
    variables = trainer.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x, m, z1, z2):
        known = x * (1 - m)
        with tf.GradientTape() as tape:
            # both noise draws in one forward pass
            y = trainer([tf.concat([known, known], 0), tf.concat([m, m], 0), tf.concat([z1, z2], 0)], training=True)
            y1, y2 = tf.split(y, 2, axis=0)
            logs = inpainting_losses(images=x, masks=m, fill1=y1, fill2=y2, z1=z1, z2=z2, **weights)
        grads = tape.gradient(logs["total"], variables)
        opt.apply_gradients(zip(grads, variables))
        return logs

    history = []
    acc: dict[str, float] = {}
    count = 0
    start = time.perf_counter()
    bs = params.batch_size
    for it in range(1, params.steps + 1):
        idx = rng.integers(0, n, size=bs)
        if crop:
            ys = rng.integers(0, h - ph + 1, size=bs)
            xs = rng.integers(0, w - pw + 1, size=bs)
            x = np.stack([data[i, y0:y0 + ph, x0:x0 + pw] for i, y0, x0 in zip(idx, ys, xs)])
        else:
            x = data[idx]
        mk = bank[rng.integers(0, len(bank), size=bs)]
        mk = np.where((rng.random(bs) < 0.5)[:, None, None], mk[:, :, ::-1], mk)
        if ph == pw:
            mk = np.where((rng.random(bs) < 0.5)[:, None, None], np.transpose(mk, (0, 2, 1)), mk)
        m = (mk[..., None] > 0).astype(np.float32)
        z1 = rng.standard_normal((bs, ph, pw, 1)).astype(np.float32)
        z2 = rng.standard_normal((bs, ph, pw, 1)).astype(np.float32)
        logs = step(x, m, z1, z2)
        for k, v in logs.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        count += 1
        if it % log_every == 0 or it == params.steps:
            rec = {"step": it, **{k: v / count for k, v in acc.items()}, "seconds": time.perf_counter() - start}
            history.append(rec)
            if log is not None:
                log(rec)
            acc, count = {}, 0
    return model, history


class LearnedInpainter(UserModelGenerator):
    """The learned stochastic inpainter (a model trained by ``image_generator.train_inpainter``).

    Args:
        model_path: the ``inpainter.keras`` written by ``python -m image_generator.train_inpainter``.
        model: an in-memory model (tests).
        batch_size: images per forward pass.
    """

    name = "learned"
    stochastic = True

    def __init__(self, model_path: str | None = None, model=None, batch_size: int = 64):
        if model_path is None and model is None:
            raise UserError(
                "generator 'learned' needs model_path: train one with "
                "`python -m image_generator.train_inpainter RESULT.json --out DIR` and pass DIR/inpainter.keras"
            )
        super().__init__(model_path=model_path, model=model, batch_size=batch_size)

    def _fill(self, images, hole, seed, donors):
        h, w = images.shape[1:3]
        if h % 4 or w % 4:
            raise UserError(f"generator 'learned' needs image sides divisible by 4, got {h}×{w}")
        return super()._fill(images, hole, seed, donors)
