"""CAM math against NumPy references on hand-made tensors, Grad-CAM equivalence, batching."""
import numpy as np
import pytest
import tensorflow as tf

from classification_models.cam import cams_from_activations, normalize_per_map, upsample_bilinear
from tests.fixtures_models import tiny_classifier, tiny_dataset

# one image, 2×2 grid, K = 3 feature maps
A = np.array(
    [[[[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]],
      [[3.0, 1.0, 0.0], [0.5, 0.5, 4.0]]]],
    np.float32,
)  # [1, 2, 2, 3]
W = np.array([[1.0, -1.0], [2.0, 0.0], [0.5, 3.0]], np.float32)  # [K=3, C=2]


def test_cam_exact_values_all_classes():
    cam = cams_from_activations(activations=A, weights=W).numpy()
    # class 0: 1*A0 + 2*A1 + 0.5*A2 ; class 1: -1*A0 + 3*A2
    expected0 = np.array([[1 + 0 + 1.0, 0 + 2 + 0], [3 + 2 + 0, 0.5 + 1 + 2]], np.float32)
    expected1 = np.array([[-1 + 6.0, 0 + 0], [-3 + 0, -0.5 + 12]], np.float32)
    assert cam.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(cam[0, ..., 0], expected0)
    np.testing.assert_array_equal(cam[0, ..., 1], expected1)


def test_cam_one_class_per_image_matches_all_classes():
    acts = np.concatenate([A, 2 * A, -A], axis=0)
    all_maps = cams_from_activations(activations=acts, weights=W).numpy()
    chosen = cams_from_activations(activations=acts, weights=W, classes=[1, 0, 1]).numpy()
    assert chosen.shape == (3, 2, 2)
    for i, c in enumerate([1, 0, 1]):
        np.testing.assert_array_equal(chosen[i], all_maps[i, ..., c])
    np.testing.assert_array_equal(chosen[1], 2 * np.array([[2.0, 2.0], [5.0, 3.5]], np.float32))


def _bilinear_ref(m: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of one [h, w] map (edges clamped)."""
    h, w = m.shape

    def coords(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = coords(out_h, h)
    x0, x1, fx = coords(out_w, w)
    top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
    bot = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
    return top * (1 - fy)[:, None] + bot * fy[:, None]


def test_upsample_exact_2x2_to_4x4():
    m = np.array([[[0.0, 1.0], [2.0, 3.0]]], np.float32)
    up = upsample_bilinear(maps=m, size=(4, 4)).numpy()
    expected = np.array(
        [[0.0, 0.25, 0.75, 1.0],
         [0.5, 0.75, 1.25, 1.5],
         [1.5, 1.75, 2.25, 2.5],
         [2.0, 2.25, 2.75, 3.0]],
        np.float32,
    )
    np.testing.assert_allclose(up[0], expected, atol=1e-6)


@pytest.mark.parametrize("shape,size", [((3, 3), (9, 9)), ((2, 5), (7, 11)), ((4, 4), (72, 72))])
def test_upsample_matches_numpy_reference(shape, size):
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2,) + shape + (3,)).astype(np.float32)
    up = upsample_bilinear(maps=maps, size=size).numpy()
    assert up.shape == (2,) + size + (3,)
    for n in range(2):
        for c in range(3):
            np.testing.assert_allclose(up[n, ..., c], _bilinear_ref(maps[n, ..., c], *size), atol=1e-5)
    # a 3-D input ([N, h, w]) upsamples the same way
    np.testing.assert_allclose(upsample_bilinear(maps=maps[..., 0], size=size).numpy(), up[..., 0], atol=1e-6)


def test_normalize_per_map_exact():
    maps = np.array([[[-2.0, 1.0], [4.0, 2.0]], [[-1.0, -3.0], [-2.0, 0.0]], [[0.5, 0.0], [0.25, 0.0]]], np.float32)
    out = normalize_per_map(maps)
    np.testing.assert_array_equal(out[0], [[0.0, 0.25], [1.0, 0.5]])
    np.testing.assert_array_equal(out[1], np.zeros((2, 2)))  # all negative -> 0
    np.testing.assert_array_equal(out[2], [[1.0, 0.0], [0.5, 0.0]])
    np.testing.assert_array_equal(normalize_per_map(maps[0]), out[0])  # [H, W] input
    keep = normalize_per_map(maps[:1], clip_negative=False)
    np.testing.assert_array_equal(keep[0], [[-0.5, 0.25], [1.0, 0.5]])


@pytest.fixture(scope="module")
def untrained_clf_and_data():
    ds = tiny_dataset()
    return tiny_classifier(ds, seed=3), ds


def test_cam_equals_gradcam_of_logit_up_to_positive_factor(untrained_clf_and_data):
    clf, ds = untrained_clf_and_data
    x = tf.constant(ds.arrays("train").images[:4], tf.float32)
    kernel, _ = clf.head_weights()
    h, w, k = clf.grid_shape
    for c in range(clf.num_classes):
        with tf.GradientTape() as tape:
            acts = clf._features(x, training=False)
            tape.watch(acts)
            logits = clf._logits(clf._gap(acts))
            target = tf.reduce_sum(logits[:, c])
        grads = tape.gradient(target, acts).numpy()  # [N, h, w, K]
        # for GAP: d logit_c / d A_k(x, y) = W[k, c] / (h w) at every position
        np.testing.assert_allclose(grads, np.broadcast_to(kernel[:, c] / (h * w), grads.shape), rtol=1e-5, atol=1e-8)
        alpha = grads.mean(axis=(1, 2))  # Grad-CAM weights [N, K]
        gradcam = np.einsum("nhwk,nk->nhw", acts.numpy(), alpha)
        cam = cams_from_activations(activations=acts, weights=kernel, classes=np.full(4, c)).numpy()
        np.testing.assert_allclose(gradcam * (h * w), cam, rtol=1e-4, atol=1e-5)
        # after the ReLU of Grad-CAM and the per-map normalisation they are the same picture
        np.testing.assert_allclose(normalize_per_map(np.maximum(gradcam, 0)), normalize_per_map(cam), atol=1e-4)


def test_batched_cams_equal_per_image_and_numpy_reference(untrained_clf_and_data):
    clf, ds = untrained_clf_and_data
    arr = ds.arrays("train")
    images, labels = arr.images[:10], arr.labels[:10]
    batch = clf.cams(images, upsample=True, batch_size=4, return_activations=True)
    assert batch.cams.shape == (10, 24, 24, 3)
    assert batch.activations.shape == (10, 12, 12, 6)
    kernel, _ = clf.head_weights()
    probs_ref = clf.model(images.astype(np.float32)).numpy()
    np.testing.assert_allclose(batch.probs, probs_ref, atol=1e-5)
    grid_ref = np.einsum("nhwk,kc->nhwc", batch.activations, kernel)
    for i in range(10):
        single = clf.cams(images[i:i + 1], upsample=True)
        np.testing.assert_allclose(single.cams[0], batch.cams[i], atol=1e-5)
        for c in range(3):
            np.testing.assert_allclose(batch.cams[i, ..., c], _bilinear_ref(grid_ref[i, ..., c], 24, 24),
                                       rtol=1e-4, atol=1e-4)
    # one class per image, a single class for all, grid resolution, tf.data input
    per = clf.cams(images, classes=labels, batch_size=3)
    np.testing.assert_allclose(per.cams, batch.cams[np.arange(10), ..., labels], atol=1e-5)
    one = clf.cams(images, classes=2, upsample=False)
    np.testing.assert_allclose(one.cams, grid_ref[..., 2], rtol=1e-4, atol=1e-5)
    from_ds = clf.cams(ds.split("train", batch_size=4).take(3))
    np.testing.assert_allclose(from_ds.cams[:10], batch.cams, atol=1e-5)
