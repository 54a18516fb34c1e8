"""The user-model adapter's signature checks and the learned inpainter (training, save/load)."""
from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from image_generator import registry
from image_generator.base import in_mask_diff

S = 16


def _model(inputs=3, mask_ch=1, out_ch=1, size=None, img_ch=1):
    import keras

    ins = [keras.Input((size, size, img_ch)), keras.Input((size, size, mask_ch)), keras.Input((size, size, 1))][:inputs]
    x = keras.layers.Concatenate()(ins) if len(ins) > 1 else ins[0]
    out = keras.layers.Conv2D(out_ch, 1, activation="sigmoid")(x)
    return keras.Model(ins, out)


def _arrays(c=1, n=2):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, S, S, c), dtype=np.uint8)
    masks = np.zeros((n, S, S), np.uint8)
    masks[:, 2:8, 2:8] = 255
    return images, masks


def test_adapter_accepts_documented_signature_and_round_trips(tmp_path):
    model = _model()
    path = tmp_path / "m.keras"
    model.save(path)
    gen = registry.get("user_model", model_path=str(path))
    images, masks = _arrays()
    out = gen.replace(images=images, masks=masks, seed=0)
    expected = np.clip(np.asarray(model([images / 255.0 * (masks[..., None] == 0),
                                         (masks[..., None] > 0).astype(np.float32),
                                         np.random.default_rng(0).standard_normal((2, S, S, 1)).astype(np.float32)])),
                       0, 1) * 255
    np.testing.assert_array_equal(out[masks > 0], np.rint(expected).astype(np.uint8)[masks > 0])
    np.testing.assert_array_equal(out[masks == 0], images[masks == 0])


@pytest.mark.parametrize("kwargs, message", [
    ({"inputs": 2}, "expected 3 inputs"),
    ({"mask_ch": 2}, "input 'mask' must have 1 channel"),
    ({"out_ch": 3}, "output has 3 channel\\(s\\) but input 'image' has 1"),
])
def test_adapter_rejects_wrong_signature(kwargs, message):
    with pytest.raises(UserError, match=message):
        registry.generator_class("user_model")(model=_model(**kwargs))


def test_adapter_rejects_size_and_channel_mismatch_with_images():
    gen = registry.generator_class("user_model")(model=_model(size=8))
    images, masks = _arrays()
    with pytest.raises(UserError, match="image expects \\[N,8,8,1\\] but the images need \\[N,16,16,1\\]"):
        gen.replace(images=images, masks=masks, seed=0)
    gen = registry.generator_class("user_model")(model=_model(img_ch=3, out_ch=3))
    with pytest.raises(UserError, match="image expects \\[N,None,None,3\\] but the images need \\[N,16,16,1\\]"):
        gen.replace(images=images, masks=masks, seed=0)


def test_adapter_missing_or_bad_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        registry.get("user_model", model_path=str(tmp_path / "none.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot load inpainting model"):
        registry.get("user_model", model_path=str(bad))


def _tiny_images(n=64, size=S, seed=0):
    """Bright bars on a dark background: structure a few steps of training can learn."""
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size, 1), 20, np.uint8)
    for i in range(n):
        r = int(rng.integers(2, size - 6))
        x[i, r:r + 3, :] = 230
    return x


def test_short_training_lowers_reconstruction_error_and_saves_safely(tmp_path):
    from image_generator.learned import InpainterTrainParams, LearnedInpainter, build_inpainter, random_masks
    from image_generator.train_inpainter import train_and_save

    images = _tiny_images()
    masks = random_masks(np.random.default_rng(7), 32, S, S)
    params = InpainterTrainParams(steps=120, batch_size=16, crop=0, base_filters=8, lr=3e-3, seed=0)
    before = LearnedInpainter(model=build_inpainter(image_shape=(S, S, 1), base_filters=8, seed=0))
    err_before = np.nanmean(in_mask_diff(before.replace(images=images[:32], masks=masks, seed=1), images[:32], masks))
    path = train_and_save(images, tmp_path / "inp", params, heldout=images[32:40], log_every=20)
    gen = registry.get("learned", model_path=str(path))
    fill = gen.replace(images=images[:32], masks=masks, seed=1)
    err_after = np.nanmean(in_mask_diff(fill, images[:32], masks))
    assert err_after < 0.7 * err_before, (err_before, err_after)
    np.testing.assert_array_equal(fill[masks == 0], images[:32][masks == 0])
    # loaded in safe mode, same seed -> same fill; other seed -> other fill
    np.testing.assert_array_equal(fill, gen.replace(images=images[:32], masks=masks, seed=1))
    assert np.nanmean(in_mask_diff(fill, gen.replace(images=images[:32], masks=masks, seed=2), masks)) > 0.1
    from common.io import read_json, read_jsonl

    hist = read_jsonl(tmp_path / "inp" / "history.jsonl")
    assert [h["step"] for h in hist] == [20, 40, 60, 80, 100, 120]
    assert hist[-1]["hole_l1"] < hist[0]["hole_l1"]
    metrics = read_json(tmp_path / "inp" / "metrics.json")
    assert set(metrics["heldout"]) == {"n", "learned_mae", "telea_mae", "learned_diversity"}


def test_random_masks_cover_a_sane_share():
    from image_generator.learned import random_masks

    m = random_masks(np.random.default_rng(0), 200, 32, 32)
    share = (m > 0).mean(axis=(1, 2))
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 255}
    assert share.min() > 0.0 and 0.03 < share.mean() < 0.5


def test_learned_needs_sides_divisible_by_4():
    from image_generator.learned import build_inpainter

    with pytest.raises(UserError, match="divisible by 4"):
        build_inpainter(image_shape=(18, 18, 1))
    gen = registry.generator_class("learned")(model=build_inpainter(image_shape=(S, S, 1), base_filters=4))
    with pytest.raises(UserError, match="divisible by 4"):
        gen.replace(images=np.zeros((1, 18, 18, 1), np.uint8), masks=np.full((1, 18, 18), 255, np.uint8), seed=0)


def test_train_params_validation():
    from image_generator.learned import InpainterTrainParams

    with pytest.raises(UserError, match="crop must be divisible by 4"):
        InpainterTrainParams(crop=30)
    with pytest.raises(UserError, match="steps must be >= 1"):
        InpainterTrainParams(steps=0)
