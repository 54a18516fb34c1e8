"""Explanation losses against NumPy references on hand-made tensors."""
import numpy as np
import pytest
import tensorflow as tf

from classification_models import losses


def _acts_masks(seed=0, n=3, h=2, w=3, k=4):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, h, w, k)).astype(np.float32)
    m = (rng.random((n, h, w)) > 0.5).astype(np.float32)
    m[-1] = 0.0  # one image without feedback
    return a, m


def test_pas_penalty_value_matches_numpy():
    a, m = _acts_masks()
    lam = 0.3
    ref = lam / len(a) * np.abs(m[..., None] * a).sum()
    got = losses.pas_penalty(activations=a, masks=m, lam=lam).numpy()
    assert got == pytest.approx(ref, rel=1e-6)
    masked = (m.sum(axis=(1, 2)) > 0).sum()
    got_m = losses.pas_penalty(activations=a, masks=m, lam=lam, normalize="masked").numpy()
    assert got_m == pytest.approx(lam / masked * np.abs(m[..., None] * a).sum(), rel=1e-6)


def test_pas_loss_adds_mean_ce():
    a, m = _acts_masks()
    ce = np.array([0.1, 0.5, 2.0], np.float32)
    total, pen = losses.pas_loss(ce=ce, activations=a, masks=m, lam=1.0)
    assert total.numpy() == pytest.approx(ce.mean() + pen.numpy(), rel=1e-6)


def test_pas_zero_for_empty_masks():
    a, _ = _acts_masks()
    z = np.zeros(a.shape[:3], np.float32)
    for norm in ("batch", "masked"):
        assert losses.pas_penalty(activations=a, masks=z, lam=5.0, normalize=norm).numpy() == 0.0
    assert losses.pasa_activation(activations=a, masks=z).numpy().tolist() == [0.0, 0.0, 0.0]


def test_pas_gradient_is_lambda_sign_inside_mask_and_zero_outside():
    a, m = _acts_masks()
    at = tf.Variable(a)
    lam = 0.7
    with tf.GradientTape() as tape:
        p = losses.pas_penalty(activations=at, masks=m, lam=lam)
    g = tape.gradient(p, at).numpy()
    ref = lam / len(a) * np.sign(a) * m[..., None]
    np.testing.assert_allclose(g, ref, rtol=1e-6)
    assert np.all(g[m == 0] == 0)
    assert np.all(np.isfinite(g))


def test_pasa_activation_and_loss_match_numpy():
    a, m = _acts_masks(1)
    k = a.shape[-1]
    act_ref = np.abs(m[..., None] * a).sum(axis=(1, 2, 3)) / (k * (m.sum(axis=(1, 2)) + 1))
    np.testing.assert_allclose(losses.pasa_activation(activations=a, masks=m).numpy(), act_ref, rtol=1e-6)
    ce = np.array([0.2, 1.0, 0.3], np.float32)
    p = np.array([0.9, 0.2, 0.5], np.float32)
    b, th = 0.4, 0.7
    total, term = losses.pasa_loss(ce=ce, activations=a, masks=m, p_true=p, base=b, threshold=th)
    ref_term = np.mean(act_ref * b ** (p / th))
    assert term.numpy() == pytest.approx(ref_term, rel=1e-5)
    assert total.numpy() == pytest.approx(ce.mean() + ref_term, rel=1e-5)


def test_pasa_gradients_match_numpy_and_zero_outside_mask():
    a, m = _acts_masks(2)
    n, _, _, k = a.shape
    p = np.array([0.9, 0.2, 0.5], np.float32)
    b, th = 0.4, 0.7
    at, pt = tf.Variable(a), tf.Variable(p)
    with tf.GradientTape() as tape:
        _, term = losses.pasa_loss(ce=np.zeros(n, np.float32), activations=at, masks=m, p_true=pt, base=b, threshold=th)
    ga, gp = tape.gradient(term, [at, pt])
    cells = m.sum(axis=(1, 2))
    adj = b ** (p / th)
    ref_a = (adj / (k * (cells + 1)) / n)[:, None, None, None] * np.sign(a) * m[..., None]
    np.testing.assert_allclose(ga.numpy(), ref_a, rtol=1e-5)
    assert np.all(ga.numpy()[m == 0] == 0)
    act = np.abs(m[..., None] * a).sum(axis=(1, 2, 3)) / (k * (cells + 1))
    np.testing.assert_allclose(gp.numpy(), act * adj * np.log(b) / th / n, rtol=1e-5)
    with tf.GradientTape() as tape:
        _, term = losses.pasa_loss(ce=np.zeros(n, np.float32), activations=at, masks=m, p_true=pt, base=b,
                                   threshold=th, detach_probability=True)
    assert tape.gradient(term, pt) is None


def test_pasa_term_decays_with_true_class_probability():
    a, m = _acts_masks(3)
    a, m = a[:1], np.ones_like(m[:1])
    terms = [losses.pasa_loss(ce=[0.0], activations=a, masks=m, p_true=[p], base=0.4, threshold=0.7)[1].numpy()
             for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(x > y for x, y in zip(terms, terms[1:]))
    assert terms[-1] == pytest.approx(terms[0] * 0.4 ** (1 / 0.7), rel=1e-5)


def test_thesis_lambda_and_candidates():
    assert losses.thesis_pas_lambda(h=14, w=14, k=64) == pytest.approx(1 / (5 * 14 * 14 * 64))
    c = losses.pas_lambda_candidates(base=1.0)
    assert len(c) == 9 and c[0] == pytest.approx(1 / 625) and c[-1] == 16.0 and 1.0 in c


def test_rrr_penalty_matches_numpy_and_gradient():
    rng = np.random.default_rng(4)
    g = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    m = np.zeros((2, 4, 4), np.float32)
    m[0, :2, :2] = 1
    ref = 2.0 * np.mean(((m[..., None] * g) ** 2).sum(axis=(1, 2, 3)))
    assert losses.rrr_penalty(input_gradients=g, masks=m, lam=2.0).numpy() == pytest.approx(ref, rel=1e-6)
    assert losses.rrr_penalty(input_gradients=g, masks=np.zeros_like(m), lam=2.0).numpy() == 0.0


def test_rrr_input_gradient_of_a_linear_model():
    # log-softmax of a linear model: d/dx Σ_k log p_k = Σ_k (W_k − C·softmax·W) -> check with numpy
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3)).astype(np.float32)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as t:
        t.watch(xt)
        s = tf.reduce_sum(tf.nn.log_softmax(xt @ w))
    got = t.gradient(s, xt).numpy()
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ref = w.sum(1)[None, :] - 4 * p @ w.T
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_gradcam_closed_form_matches_tape():
    rng = np.random.default_rng(6)
    a = tf.constant(rng.random((2, 3, 3, 5)).astype(np.float32))
    w = rng.normal(size=(5, 3)).astype(np.float32)
    cls = np.array([0, 2])
    with tf.GradientTape() as t:
        t.watch(a)
        logits = tf.reduce_mean(a, axis=[1, 2]) @ w
        y = tf.reduce_sum(tf.gather(logits, cls, batch_dims=1))
    grads = t.gradient(y, a)
    alpha = tf.reduce_mean(grads, axis=[1, 2])
    ref = tf.nn.relu(tf.einsum("nhwk,nk->nhw", a, alpha)).numpy()
    got = losses.gradcam_gap(activations=a, weights=w, classes=cls).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)
    m = np.zeros((2, 3, 3), np.float32)
    m[:, 0, 0] = 1
    pen = losses.rrr_gradcam_penalty(gradcam=got, masks=m, lam=3.0).numpy()
    assert pen == pytest.approx(3.0 * np.mean((got[:, 0, 0]) ** 2), rel=1e-5)


def test_selective_dropout_zeros_exactly_top_k():
    rng = np.random.default_rng(7)
    n, h, w, k = 3, 4, 4, 10
    a = rng.random((n, h, w, k)).astype(np.float32)
    wts = rng.normal(size=(n, k)).astype(np.float32)
    m = np.zeros((n, h, w), np.float32)
    m[0, :2, :2] = 1
    m[1, 1:, :] = 1  # image 2 has no mask
    scale = losses.selective_dropout_scale(activations=a, class_weights=wts, masks=m, k=3)
    for i in range(2):
        contrib = (a[i] * m[i][..., None]).sum((0, 1)) * wts[i] / m[i].sum()
        top = set(np.argsort(-contrib)[:3].tolist())
        assert set(np.flatnonzero(scale[i] == 0).tolist()) == top
        np.testing.assert_allclose(scale[i][scale[i] > 0], k / (k - 3))
    assert np.all(scale[2] == 1.0)
    with pytest.raises(ValueError):
        losses.selective_dropout_scale(activations=a, class_weights=wts, masks=m, k=k)
