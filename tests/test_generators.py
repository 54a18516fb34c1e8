"""The replacement-generator contract (image_generator.base / registry), for every generator."""
from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from image_generator import registry
from image_generator.base import Generator, diversity, in_mask_diff, seed_for, variants

H = W = 16


def _images_masks_donors(c=1, n=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, H, W, c), dtype=np.uint8)
    masks = np.zeros((n, H, W), np.uint8)
    masks[:, 4:12, 3:9] = 255
    masks[0, 0, 0] = 255  # an isolated pixel too
    donors = rng.integers(0, 256, (7, H, W, c), dtype=np.uint8)
    return images, masks, donors


def _tiny_user_model(c=1, size=None):
    import keras

    img = keras.Input((size, size, c))
    msk = keras.Input((size, size, 1))
    z = keras.Input((size, size, 1))
    x = keras.layers.Concatenate()([img, msk, z])
    x = keras.layers.Conv2D(c, 3, padding="same", activation="sigmoid",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=1))(x)
    return keras.Model([img, msk, z], x)


def _tiny_learned_model(c=1):
    from image_generator.learned import build_inpainter

    return build_inpainter(image_shape=(H, W, c), base_filters=4, seed=0)


def make(name, c=1):
    if name == "user_model":
        return registry.generator_class(name)(model=_tiny_user_model(c))
    if name == "learned":
        return registry.generator_class(name)(model=_tiny_learned_model(c))
    return registry.get(name)


ALL = sorted(registry.GENERATORS)
STOCHASTIC = ["crop_replace", "noise", "learned", "user_model"]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ALL)
def test_outside_mask_unchanged_exactly(name, channels):
    images, masks, donors = _images_masks_donors(channels)
    gen = make(name, channels)
    out = gen.replace(images=images, masks=masks, seed=3, donors=donors)
    assert out.dtype == np.uint8 and out.shape == images.shape
    keep = masks == 0
    np.testing.assert_array_equal(out[keep], images[keep])
    # and something changed inside
    assert (out[masks > 0] != images[masks > 0]).any()


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_fill(name):
    images, masks, donors = _images_masks_donors()
    gen = make(name)
    a = gen.replace(images=images, masks=masks, seed=11, donors=donors)
    b = gen.replace(images=images, masks=masks, seed=11, donors=donors)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_different_seeds_different_fills(name):
    images, masks, donors = _images_masks_donors()
    gen = make(name)
    assert gen.stochastic
    a = gen.replace(images=images, masks=masks, seed=1, donors=donors)
    b = gen.replace(images=images, masks=masks, seed=2, donors=donors)
    assert np.nanmean(in_mask_diff(a, b, masks)) > 0.5


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_opencv_is_deterministic_and_smooth(name):
    images = np.full((1, H, W, 1), 100, np.uint8)
    masks = np.zeros((1, H, W), np.uint8)
    masks[0, 5:10, 5:10] = 255
    images[0, 5:10, 5:10] = 0  # the hole's content must be invisible to the fill
    gen = registry.get(name)
    a = gen.replace(images=images, masks=masks, seed=1)
    b = gen.replace(images=images, masks=masks, seed=99)
    np.testing.assert_array_equal(a, b)
    # a flat surround inpaints to the same flat value
    assert np.abs(a[0, 5:10, 5:10, 0].astype(int) - 100).max() <= 3  # Telea rounds to ±2 on a flat surround


def test_crop_replace_takes_same_region_of_another_image():
    images, masks, donors = _images_masks_donors(n=4)
    donors = np.concatenate([images[:1], donors[:1]])  # image 0 is among the donors
    out = registry.get("crop_replace").replace(images=images, masks=masks, seed=0, donors=donors)
    hole = masks > 0
    for i in range(len(images)):
        matches = [np.array_equal(out[i][hole[i]], d[hole[i]]) for d in donors]
        assert any(matches)
    # image 0 never receives its own content back while another donor exists
    for s in range(10):
        o = registry.get("crop_replace").replace(images=images[:1], masks=masks[:1], seed=s, donors=donors)
        np.testing.assert_array_equal(o[0][hole[0]], donors[1][hole[0]])


def test_crop_replace_needs_donors():
    images, masks, _ = _images_masks_donors()
    with pytest.raises(UserError, match="donor"):
        registry.get("crop_replace").replace(images=images, masks=masks, seed=0)


def test_noise_range():
    images, masks, _ = _images_masks_donors()
    out = registry.get("noise", low=10, high=20).replace(images=images, masks=masks, seed=0)
    vals = out[masks > 0]
    assert vals.min() >= 10 and vals.max() <= 20


def test_registry_errors_list_valid_names():
    with pytest.raises(UserError, match="valid generators: crop_replace, learned, noise, ns, telea, user_model"):
        registry.get("deepfill")
    with pytest.raises(UserError, match="^generator 'telea' params: unknown key 'k' \\(valid keys: radius\\)$"):
        registry.get("telea", k=3)
    with pytest.raises(UserError, match="^generator 'noise' params: high must be an integer in \\[0, 255\\], got 300$"):
        registry.get("noise", high=300)
    with pytest.raises(UserError, match="^generator 'user_model' params: batch_size must be an integer >= 1, got 0$"):
        registry.get("user_model", model_path="m.keras", batch_size=0)
    with pytest.raises(UserError, match="^generator spec: unknown key 'parms'"):
        registry.from_spec({"name": "telea", "parms": {}})
    assert registry.param_names("learned") == ["model_path", "batch_size"]
    with pytest.raises(UserError, match="needs model_path"):
        registry.get("learned")
    assert isinstance(registry.from_spec({"name": "telea", "params": {"radius": 2}}), Generator)
    assert registry.from_spec({"name": "telea", "params": None}).radius == 3.0


def test_bad_shapes_fail_clearly():
    images, masks, _ = _images_masks_donors()
    gen = registry.get("noise")
    with pytest.raises(UserError, match="masks have shape"):
        gen.replace(images=images, masks=masks[:, :8], seed=0)
    with pytest.raises(UserError, match="uint8"):
        gen.replace(images=images.astype(np.float32), masks=masks, seed=0)


def test_measurements_against_hand_values():
    a = np.zeros((1, 2, 2, 1), np.uint8)
    b = np.array([[[[10], [20]], [[30], [200]]]], np.uint8)
    m = np.array([[[255, 255], [0, 0]]], np.uint8)
    np.testing.assert_allclose(in_mask_diff(a, b, m), [15.0])
    fills = np.stack([a, b, np.full_like(a, 10)], axis=1)  # [1, 3, 2, 2, 1]
    # pairs in mask: (a,b) 15, (a,10) 10, (b,10) (0+10)/2 = 5 -> mean 10
    np.testing.assert_allclose(diversity(fills, m), [10.0])
    assert seed_for(1, 2) == seed_for(1, 2) != seed_for(2, 1)


class _Identity(Generator):
    name = "identity"

    def _fill(self, images, hole, seed, donors):
        return images


class _FirstTryIdentity(Generator):
    """Returns the original on the first draw of each slot, noise afterwards."""

    name = "flaky"
    stochastic = True

    def __init__(self):
        self.calls = 0

    def _fill(self, images, hole, seed, donors):
        self.calls += 1
        if self.calls % 2 == 1:
            return images
        return np.random.default_rng(seed).integers(0, 256, images.shape, dtype=np.uint8)


def test_variants_rejects_a_fill_equal_to_the_original():
    images, masks, _ = _images_masks_donors()
    with pytest.raises(UserError, match="stayed within 8 of the original"):
        variants(_Identity(), images=images, masks=masks, n=2, seed=0, max_tries=3)
    res = variants(_Identity(), images=images, masks=masks, n=2, seed=0, max_tries=3, on_failure="report")
    assert not res.ok.any()
    assert len(res.failures) == 6 and all(d == 0.0 for _, _, d in res.failures)
    assert (res.tries == 3).all()


def test_variants_resamples_until_the_margin_is_met():
    images, masks, _ = _images_masks_donors()
    res = variants(_FirstTryIdentity(), images=images, masks=masks, n=3, seed=0, min_diff=20.0)
    assert res.ok.all() and (res.tries == 2).all()
    assert (res.diffs >= 20.0).all()
    keep = masks == 0
    for j in range(3):
        np.testing.assert_array_equal(res.images[:, j][keep], images[keep])
    assert (res.diversity > 20.0).all()
    again = variants(_FirstTryIdentity(), images=images, masks=masks, n=3, seed=0, min_diff=20.0)
    np.testing.assert_array_equal(res.images, again.images)


def test_variants_diversity_zero_for_deterministic_generator():
    images, masks, _ = _images_masks_donors()
    res = variants(registry.get("telea"), images=images, masks=masks, n=3, seed=0, min_diff=0.0)
    np.testing.assert_allclose(res.diversity, 0.0)
    noisy = variants(registry.get("noise"), images=images, masks=masks, n=3, seed=0)
    assert (noisy.diversity > 50).all()  # uniform noise: E|u1-u2| = 85


def test_variants_empty_mask_is_an_error():
    images, masks, _ = _images_masks_donors()
    masks[1] = 0
    with pytest.raises(UserError, match="mask of image 1 is empty"):
        variants(registry.get("noise"), images=images, masks=masks, n=2, seed=0)
