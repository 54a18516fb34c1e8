"""Explanation losses as pure functions (thesis §4.4, §5.1, §5.2; Ross et al. 2017;
Schramowski et al. 2020).

Every function takes keyword-only tensors (NumPy or TF) and returns TF tensors; the
gradient tapes, optimisers and batches live in ``retraining``. Conventions:

* ``activations`` ``A``: last-conv maps ``[N, h, w, K]`` (ReLU outputs, but ``|·|`` is
  taken anyway as in the thesis, so a linear last conv cannot cheat);
* ``masks`` ``M``: ``[N, h, w]`` on the activation grid (``classification_models.mask_ops``
  resizes image masks), values in ``[0, 1]``, 1 = irrelevant; an all-zero mask means
  "no feedback on this image" and contributes exactly zero penalty;
* ``ce``: per-example cross-entropy ``[N]``; ``p_true``: true-class probability ``[N]``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

#: Valid ``normalize`` values of :func:`pas_penalty`.
PAS_NORMALIZATIONS = ("batch", "masked")


def _tf():
    return tf


def masked_activation_sum(*, activations, masks):
    """``Σ_{b,c,d} |M(a,b,c) · A(a,b,c,d)|`` per image.

    Args:
        activations: ``[N, h, w, K]``.
        masks: ``[N, h, w]`` in [0, 1].

    Returns:
        ``[N]`` float32.
    """
    tf = _tf()
    a = tf.convert_to_tensor(activations, tf.float32)
    m = tf.convert_to_tensor(masks, tf.float32)
    return tf.reduce_sum(tf.abs(m[..., None] * a), axis=[1, 2, 3])


def thesis_pas_lambda(*, h: int, w: int, k: int) -> float:
    """The thesis's chosen λ = 1/(5·h·w·K) (§5.1.1: 1/(5·14·14·64) for the 224 model)."""
    return 1.0 / (5.0 * h * w * k)


def pas_lambda_candidates(*, base: float) -> list[float]:
    """The thesis's 9 λ candidates (§5.1.1): base, base·2^i and base/5^i for i = 1..4, ascending."""
    values = [base] + [base * 2 ** i for i in range(1, 5)] + [base / 5 ** i for i in range(1, 5)]
    return sorted(values)


def pas_penalty(*, activations, masks, lam: float, normalize: str = "batch"):
    """PAS activation term (thesis §5.1, eq. 5.1): ``(λ/N) · Σ_a Σ_d Σ_{b,c} |M·A|``.

    Args:
        activations: ``[N, h, w, K]``.
        masks: ``[N, h, w]`` in [0, 1] (0 everywhere for images without feedback).
        lam: λ.
        normalize: ``"batch"`` divides by the batch size N (the thesis); ``"masked"``
            divides by the number of images with a non-empty mask (at least 1), so the
            strength of λ does not depend on the masked share of the batch (a calibration probe:
            the λ that works with 5/55 masked images is ~11× too strong with 55/55).

    Returns:
        Scalar penalty (0 when every mask is empty).
    """
    tf = _tf()
    if normalize not in PAS_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {PAS_NORMALIZATIONS}, got {normalize!r}")
    per_image = masked_activation_sum(activations=activations, masks=masks)
    if normalize == "batch":
        denom = tf.cast(tf.shape(per_image)[0], tf.float32)
    else:
        m = tf.convert_to_tensor(masks, tf.float32)
        has_mask = tf.cast(tf.reduce_sum(m, axis=[1, 2]) > 0, tf.float32)
        denom = tf.maximum(tf.reduce_sum(has_mask), 1.0)
    return float(lam) * tf.reduce_sum(per_image) / denom


def pas_loss(*, ce, activations, masks, lam: float, normalize: str = "batch"):
    """PAS loss ``mean(CE) + pas_penalty``.

    Args:
        ce: per-example cross-entropy ``[N]``.
        activations, masks, lam, normalize: see :func:`pas_penalty`.

    Returns:
        ``(total, penalty)`` scalars.
    """
    tf = _tf()
    penalty = pas_penalty(activations=activations, masks=masks, lam=lam, normalize=normalize)
    return tf.reduce_mean(tf.convert_to_tensor(ce, tf.float32)) + penalty, penalty


def pasa_activation(*, activations, masks):
    """PASA's ``Act(a) = (1/K) · Σ_d Σ_{b,c} |M·A| / (m_a + 1)`` (thesis eq. 5.2).

    Args:
        activations: ``[N, h, w, K]``.
        masks: ``[N, h, w]`` in [0, 1]; ``m_a = Σ_{b,c} M(a,b,c)`` (the number of mask
            cells for a binary mask).

    Returns:
        ``[N]``; 0 for an empty mask.
    """
    tf = _tf()
    a = tf.convert_to_tensor(activations, tf.float32)
    m = tf.convert_to_tensor(masks, tf.float32)
    k = tf.cast(tf.shape(a)[-1], tf.float32)
    cells = tf.reduce_sum(m, axis=[1, 2])
    return masked_activation_sum(activations=a, masks=m) / (k * (cells + 1.0))


def pasa_loss(*, ce, activations, masks, p_true, base: float, threshold: float,
              detach_probability: bool = False):
    """PASA (thesis §5.2, eq. 5.2): ``(1/N) Σ_a [CE(a) + Act(a) · B^(p_true(a)/th)]``.

    The adjustment ``B^(p/th)`` (B < 1) shrinks the activation term as the true-class
    probability rises, from ``Act`` at p = 0 to ``Act·B^(1/th)`` at p = 1.

    Args:
        ce: per-example cross-entropy ``[N]``.
        activations: ``[N, h, w, K]``.
        masks: ``[N, h, w]`` in [0, 1].
        p_true: true-class probability ``[N]``.
        base: B (> 0).
        threshold: th (> 0).
        detach_probability: stop the gradient through ``p_true`` in the adjustment
            (the thesis lets it flow, which for B < 1 also pushes ``p_true`` up).

    Returns:
        ``(total, act_term)`` scalars; ``act_term = mean(Act · B^(p/th))``.
    """
    tf = _tf()
    if base <= 0 or threshold <= 0:
        raise ValueError(f"base and threshold must be > 0, got B={base}, th={threshold}")
    p = tf.convert_to_tensor(p_true, tf.float32)
    if detach_probability:
        p = tf.stop_gradient(p)
    act = pasa_activation(activations=activations, masks=masks)
    adjust = tf.pow(tf.constant(float(base), tf.float32), p / float(threshold))
    term = tf.reduce_mean(act * adjust)
    return tf.reduce_mean(tf.convert_to_tensor(ce, tf.float32)) + term, term


def rrr_penalty(*, input_gradients, masks, lam: float):
    """Right for the Right Reasons (Ross et al. 2017): ``λ · (1/N) Σ_a ‖M_a ⊙ ∂Σ_k log p_k/∂x_a‖²``.

    Args:
        input_gradients: ``∂ Σ_k log p_k / ∂x`` ``[N, H, W, C]`` (computed by the caller
            with a tape that is itself recorded, i.e. double backpropagation).
        masks: ``[N, H, W]`` at image resolution, in [0, 1].
        lam: λ.

    Returns:
        Scalar (sum over pixels and channels, mean over the batch — Ross sums over the
        batch; the mean keeps λ independent of the batch size).
    """
    tf = _tf()
    g = tf.convert_to_tensor(input_gradients, tf.float32)
    m = tf.convert_to_tensor(masks, tf.float32)
    per_image = tf.reduce_sum(tf.square(m[..., None] * g), axis=[1, 2, 3])
    return float(lam) * tf.reduce_mean(per_image)


def gradcam_gap(*, activations, weights, classes):
    """Grad-CAM of a GAP → Dense head in closed form: ``ReLU(Σ_k W[k,c]·A_k) / (h·w)``.

    For ``logit_c = Σ_k W[k,c] · mean_{b,c} A_k + bias`` the Grad-CAM channel weights
    ``α_k = mean_{b,c} ∂logit_c/∂A_k = W[k,c]/(h·w)``, so Grad-CAM is ReLU(CAM)/(h·w);
    the test checks this against a gradient tape.

    Args:
        activations: ``[N, h, w, K]``.
        weights: Dense kernel ``[K, C]``.
        classes: int ``[N]``.

    Returns:
        ``[N, h, w]`` (differentiable in activations and weights).
    """
    tf = _tf()
    a = tf.convert_to_tensor(activations, tf.float32)
    w = tf.convert_to_tensor(weights, tf.float32)
    wc = tf.gather(tf.transpose(w), tf.cast(classes, tf.int32))  # [N, K]
    hw = tf.cast(tf.shape(a)[1] * tf.shape(a)[2], tf.float32)
    return tf.nn.relu(tf.einsum("nhwk,nk->nhw", a, wc)) / hw


def rrr_gradcam_penalty(*, gradcam, masks, lam: float):
    """RRR-G (Schramowski et al. 2020): ``λ · (1/N) Σ_a ‖M_a ⊙ GradCAM_a‖²`` on the activation grid.

    Args:
        gradcam: ``[N, h, w]`` Grad-CAM of the true class (e.g. :func:`gradcam_gap`).
        masks: ``[N, h, w]`` in [0, 1].
        lam: λ.

    Returns:
        Scalar; 0 for empty masks.
    """
    tf = _tf()
    g = tf.convert_to_tensor(gradcam, tf.float32)
    m = tf.convert_to_tensor(masks, tf.float32)
    return float(lam) * tf.reduce_mean(tf.reduce_sum(tf.square(m * g), axis=[1, 2]))


def selective_dropout_scale(*, activations, class_weights, masks, k: int = 20) -> np.ndarray:
    """Per-image filter multipliers for selective dropout (thesis §4.4).

    Each last-conv map is weighted by the CAM class's Dense weight (as in the CAM),
    averaged inside the mask; the ``k`` filters with the largest average are zeroed and
    the others rescaled by ``K/(K−k)`` (inverted-dropout scaling). Images whose mask is
    empty keep every filter (scale 1).

    Args:
        activations: ``[N, h, w, K]`` NumPy.
        class_weights: ``[N, K]`` — ``W[:, cam_class]`` per image.
        masks: ``[N, h, w]`` in [0, 1].
        k: filters to drop, ``0 <= k < K``.

    Returns:
        ``[N, K]`` float32 multipliers (pass as ``feature_scale`` to ``Classifier.forward``).
    """
    a = np.asarray(activations, np.float32)
    wts = np.asarray(class_weights, np.float32)
    m = np.asarray(masks, np.float32)
    n, _, _, kk = a.shape
    if not 0 <= k < kk:
        raise ValueError(f"k must be in [0, {kk - 1}] for {kk} filters, got {k}")
    scale = np.ones((n, kk), np.float32)
    area = m.sum(axis=(1, 2))
    contrib = np.einsum("nhwk,nhw->nk", a, m) * wts / np.maximum(area, 1e-12)[:, None]
    for i in range(n):
        if area[i] <= 0 or k == 0:
            continue
        # stable order: ties broken by filter id, so exactly k filters are zeroed
        top = np.argsort(-contrib[i], kind="stable")[:k]
        scale[i] = kk / (kk - k)
        scale[i, top] = 0.0
    return scale
