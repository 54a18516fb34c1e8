"""Class activation maps as pure functions (Zhou et al. 2016; thesis §1.1.6-1.1.8).

``CAM_c(x, y) = Σ_k W[k, c] · A_k(x, y)`` over the K last-conv maps ``A``; the
Dense bias is left out, as in the paper. Functions accept NumPy or TF tensors and
return TF tensors (NumPy in, NumPy-convertible out).
"""
from __future__ import annotations

import cv2
import numpy as np

from common.images import to_rgb


def cams_from_activations(*, activations, weights, classes=None):
    """CAMs of all classes or of one class per image.

    Args:
        activations: last-conv activations ``[N, h, w, K]``.
        weights: Dense kernel ``[K, C]``.
        classes: None for all classes, or int class ids ``[N]`` (one map per image).

    Returns:
        ``[N, h, w, C]`` when ``classes`` is None, else ``[N, h, w]``.
    """
    import tensorflow as tf  # deferred: the CAM arithmetic serves the mask tool without TensorFlow

    a = tf.convert_to_tensor(activations, tf.float32)
    w = tf.convert_to_tensor(weights, tf.float32)
    if classes is None:
        return tf.einsum("nhwk,kc->nhwc", a, w)
    wc = tf.gather(tf.transpose(w), tf.convert_to_tensor(classes, tf.int32))  # [N, K]
    return tf.einsum("nhwk,nk->nhw", a, wc)


def _interpolation_matrix(n_in, n_out):
    """``[n_out, n_in]`` bilinear weights with half-pixel centres, edges clamped."""
    import tensorflow as tf  # deferred: the CAM arithmetic serves the mask tool without TensorFlow

    n_in = tf.cast(n_in, tf.int32)
    x = (tf.range(n_out, dtype=tf.float32) + 0.5) * tf.cast(n_in, tf.float32) / tf.cast(n_out, tf.float32) - 0.5
    x = tf.clip_by_value(x, 0.0, tf.cast(n_in - 1, tf.float32))
    lo = tf.cast(tf.floor(x), tf.int32)
    hi = tf.minimum(lo + 1, n_in - 1)
    frac = (x - tf.cast(lo, tf.float32))[:, None]
    return tf.one_hot(lo, n_in) * (1.0 - frac) + tf.one_hot(hi, n_in) * frac


def upsample_bilinear(*, maps, size):
    """Bilinear upsampling of ``[N, h, w]`` or ``[N, h, w, C]`` maps to ``size=(H, W)``.

    Uses half-pixel centres (as ``tf.image.resize``, OpenCV's ``INTER_LINEAR`` and
    scikit-image's ``resize(order=1)``), computed as two small matrix products — one per
    axis — which is about twice as fast as ``tf.image.resize`` on the CPU for CAM-sized
    maps and gives the same values up to float rounding.
    """
    import tensorflow as tf  # deferred: the CAM arithmetic serves the mask tool without TensorFlow

    m = tf.convert_to_tensor(maps, tf.float32)
    squeeze = m.shape.rank == 3
    if squeeze:
        m = m[..., None]
    shape = tf.shape(m)
    rows = _interpolation_matrix(shape[1], size[0])  # [H, h]
    cols = _interpolation_matrix(shape[2], size[1])  # [W, w]
    out = tf.einsum("Hh,nhWc->nHWc", rows, tf.einsum("nhwc,Ww->nhWc", m, cols))
    return out[..., 0] if squeeze else out


def normalize_per_map(maps, *, clip_negative: bool = True):
    """Scales each map to [0, 1] by its own maximum, as the thesis colours CAMs.

    Args:
        maps: ``[N, H, W]`` (or ``[H, W]``) array.
        clip_negative: negatives (evidence against the class) are shown as 0.

    Returns:
        NumPy array of the same shape; an all-zero (or all-negative) map stays 0.
    """
    m = np.asarray(maps, np.float32)
    single = m.ndim == 2
    if single:
        m = m[None]
    if clip_negative:
        m = np.maximum(m, 0.0)
    peak = m.reshape(m.shape[0], -1).max(axis=1) if m.size else np.zeros((0,), np.float32)
    peak = np.where(peak > 0, peak, 1.0).reshape((-1,) + (1,) * (m.ndim - 1))
    out = m / peak
    return out[0] if single else out


_JET: np.ndarray | None = None


def jet_lut() -> np.ndarray:
    """The jet colour map as a ``uint8 [256, 3]`` RGB table (OpenCV's COLORMAP_JET),
    the one palette every CAM picture of the project uses."""
    global _JET
    if _JET is None:

        bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, :]
        _JET = np.ascontiguousarray(bgr[:, ::-1])
    return _JET


def in_mask_energy(*, cams, masks) -> np.ndarray:
    """Per-image in-mask CAM energy: the share of the positive CAM evidence that lies inside
    the mask (the one definition: run metrics, the mask tool's triage order).

    Args:
        cams: ``[N, H, W]`` CAMs of the true class at image resolution.
        masks: ``[N, H, W]``; nonzero = irrelevant.

    Returns:
        float64 ``[N]``; NaN where the CAM has no positive evidence.
    """
    pos = np.maximum(np.asarray(cams, np.float64), 0.0)
    m = (np.asarray(masks) > 0).astype(np.float64)
    num = (pos * m).sum(axis=(1, 2))
    den = pos.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def cam_overlay(image: np.ndarray, cam: np.ndarray, *, opacity: float = 0.5, normalized: bool = False) -> np.ndarray:
    """The one CAM picture (figures, tables, report, the mask tool's panes): the image
    (grey repeated to RGB) with the jet-coloured CAM blended on top at ``opacity``.

    Fixed-point blend (weights in 1/256 steps, rounded): about twice as fast as float32
    and within one grey level of it, which the mask tool's live panes need.

    Args:
        image: uint8 ``[H, W, C]`` (C = 1 or 3) or ``[H, W]``.
        cam: ``[H, W]`` at image size; scaled by its own maximum (negatives shown as 0)
            unless ``normalized`` (already in [0, 1]).

    Returns:
        uint8 ``[H, W, 3]``.
    """
    a = int(round(min(max(float(opacity), 0.0), 1.0) * 256))
    m = np.asarray(cam, np.float32) if normalized else normalize_per_map(cam)
    idx = np.clip(m * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = to_rgb(image).astype(np.uint16)
    out *= 256 - a
    out += (jet_lut().astype(np.uint16) * a + 128)[idx]
    out >>= 8
    return out.astype(np.uint8)


def gradcam_from_gradients(*, activations, gradients):
    """Grad-CAM (Selvaraju et al. 2017) without the ReLU, scaled to match the CAM:
    ``h·w·Σ_k mean_xy(∂logit/∂A_k)·A_k``.

    For a global-average-pooling -> Dense head ``∂logit_c/∂A_k = W[k, c]/(h·w)`` at
    every position, so this equals ``cams_from_activations`` exactly.

    Args:
        activations: ``[N, h, w, K]`` feature maps.
        gradients: ``[N, h, w, K]`` gradient of one logit per image w.r.t. them.

    Returns:
        ``[N, h, w]``.
    """
    import tensorflow as tf  # deferred: the CAM arithmetic serves the mask tool without TensorFlow

    a = tf.convert_to_tensor(activations, tf.float32)
    g = tf.convert_to_tensor(gradients, tf.float32)
    hw = tf.cast(tf.shape(a)[1] * tf.shape(a)[2], tf.float32)
    alpha = tf.reduce_mean(g, axis=[1, 2])
    return hw * tf.einsum("nhwk,nk->nhw", a, alpha)
