"""Synthetic data sets (symbols, decoy_digits): ground truth, balance, correlation, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.mathtext import MathTextParser

import datasets
from common.errors import UserError
from datasets import symbols as sym
from datasets.decoy_digits import shade

SMALL = {"n_train": 300, "n_val": 60, "n_test": 150}


@pytest.fixture(scope="module")
def symbols_ds(tmp_path_factory):
    return datasets.load({"name": "symbols", "params": dict(SMALL, seed=1)}, tmp_path_factory.mktemp("root"))


@pytest.fixture(scope="module")
def decoy_ds(tmp_path_factory):
    return datasets.load("decoy_digits", tmp_path_factory.mktemp("root"))


def test_symbols_shape_and_exact_class_balance(symbols_ds):
    ds = symbols_ds
    assert ds.class_names == ["epsilon", "xi", "zeta"] and ds.image_shape == (72, 72, 1)
    for split, n in (("train", 300), ("val", 60), ("test", 150)):
        arr = ds.arrays(split)
        assert len(arr) == n and arr.images.dtype == np.uint8
        assert np.bincount(arr.labels, minlength=3).tolist() == [n // 3] * 3
        assert len(set(arr.indices)) == n and arr.indices[0] == f"{split}_00000"


def test_symbols_correlation_rates_match_parameters(symbols_ds):
    ds = symbols_ds
    y, s = ds.arrays("train").labels, ds.spurious_labels("train")
    assert abs((s == y).mean() - 0.9) < 0.06
    assert ds.manifest["spurious_match_rate"]["train"] == pytest.approx((s == y).mean())
    # eval: distractor independent of class, each kind about 1/3 overall and within each class
    ys, ss = ds.arrays("test").labels, ds.spurious_labels("test")
    assert np.all(np.abs(np.bincount(ss, minlength=3) / len(ss) - 1 / 3) < 0.1)
    assert abs((ss == ys).mean() - 1 / 3) < 0.12


def test_symbols_eval_correlation_parameter(tmp_path):
    ds = datasets.load({"name": "symbols", "params": {"n_train": 30, "n_val": 30, "n_test": 60,
                                                      "train_correlation": 0.0, "eval_correlation": 1.0}}, tmp_path)
    assert (ds.spurious_labels("test") == ds.arrays("test").labels).all()
    assert (ds.spurious_labels("train") != ds.arrays("train").labels).all()


def test_symbols_null_train_correlation_means_no_shortcut(tmp_path):
    ds = datasets.load({"name": "symbols", "params": {"n_train": 600, "n_val": 3, "n_test": 3,
                                                      "train_correlation": None}}, tmp_path)
    y, s = ds.arrays("train").labels, ds.spurious_labels("train")
    assert ds.params["train_correlation"] is None
    assert abs((s == y).mean() - 1 / 3) < 0.07
    for k in range(3):  # within each class each distractor kind about 1/3
        assert np.all(np.abs(np.bincount(s[y == k], minlength=3) / (y == k).sum() - 1 / 3) < 0.1)
    # the default (0.9) is a different cache
    assert ds.folder != datasets.load({"name": "symbols", "params": {"n_train": 600, "n_val": 3, "n_test": 3}},
                                      tmp_path).folder


def test_symbols_boxes_contain_distractor_pixels_outside_glyph(symbols_ds):
    ds = symbols_ds
    zx, zy, cmax = sym.ZONE_X, sym.ZONE_Y, sym.CLUTTER_MAX
    assert ds.manifest["clutter_max"] == cmax
    n_bright_distractor = n_plain = 0
    for split in ("train", "test"):
        arr = ds.arrays(split)
        spur = ds.spurious_labels(split)
        for idx, img, s in zip(arr.indices, arr.images[..., 0], spur):
            box, gbox = ds.irrelevant_box(idx), ds.object_box(idx)
            assert gbox is not None
            gx0, gy0, gx1, gy1 = gbox
            zone = np.zeros_like(img, dtype=bool)
            zone[zy:, :zx] = True
            # the glyph (box) never reaches the corner zone
            assert not zone[gy0:gy1, gx0:gx1].any()
            # the glyph is brighter than any clutter, so it is not lost in it
            assert img[gy0:gy1, gx0:gx1].max() >= sym.GLYPH_PEAK[0] - 1
            if sym.DISTRACTORS[s] is None:
                assert box is None and ds.irrelevant_mask(idx) is None
                assert not img[zone].any()  # no clutter in the zone: it stays black
                # all ink brighter than the clutter is the glyph
                ys, xs = np.nonzero(img > cmax)
                assert xs.min() >= gx0 and xs.max() < gx1 and ys.min() >= gy0 and ys.max() < gy1
                n_plain += 1
                continue
            x0, y0, x1, y1 = box
            # the box is tight around ink and lies in the corner zone; the distractor is bright
            assert x1 <= zx and y0 >= zy
            sub = img[y0:y1, x0:x1] > 0
            assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()
            n_bright_distractor += int(img[y0:y1, x0:x1].max() == 255)
            # inside the zone, every ink pixel is in the distractor box (no clutter there)
            in_zone = (img > 0) & zone
            in_zone[y0:y1, x0:x1] = False
            assert not in_zone.any()
            # every pixel brighter than the clutter is in the distractor box or the glyph box
            outside = img > cmax
            outside[y0:y1, x0:x1] = False
            outside[gy0:gy1, gx0:gx1] = False
            assert not outside.any()
            assert x1 <= gx0 or y0 >= gy1, f"{idx}: distractor box {box} overlaps glyph box {gbox}"
            mask = ds.irrelevant_mask(idx)
            assert mask.sum() == 255 * (x1 - x0) * (y1 - y0) and (mask[(img > 0) & (mask == 0) & zone] == 0).all()
    assert n_bright_distractor > 0 and n_bright_distractor == (ds.spurious_labels("train") != 1).sum() + (
        ds.spurious_labels("test") != 1).sum()
    # both kinds of image were checked: those without a distractor too
    assert n_plain > 0 and n_plain == (ds.spurious_labels("train") == 1).sum() + (ds.spurious_labels("test") == 1).sum()


def test_symbols_layers_glyph_box_holds_every_glyph_pixel_and_clutter_avoids_zone():
    r = sym._Renderer()
    zone = np.zeros((72, 72), bool)
    zone[sym.ZONE_Y - sym.GAP:, : sym.ZONE_X + sym.GAP] = True
    for i in range(60):
        label, dist = i % 3, sym.DISTRACTORS[(i // 3) % 3]
        g, clutter, d = r.layers(label, dist, np.random.default_rng([3, i]))
        img, box, gbox = r.sample(label, dist, np.random.default_rng([3, i]))
        gx0, gy0, gx1, gy1 = gbox
        ys, xs = np.nonzero(g)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == gbox  # tight, holds every glyph pixel
        assert sym.GLYPH_PEAK[0] - 1 <= g.max() <= sym.GLYPH_PEAK[1] + 1
        assert clutter.max() <= sym.CLUTTER_MAX and clutter.any() and not clutter[zone].any()
        assert not g[zone].any()
        expect = np.maximum(g, clutter)
        if dist is None:
            assert d is None and box is None
        else:
            x0, y0, x1, y1 = box
            ys, xs = np.nonzero(d)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == box and d.max() == 255
            assert not (clutter[y0:y1, x0:x1]).any()  # no clutter inside the distractor box
            expect = np.maximum(expect, d)
        np.testing.assert_array_equal(img[..., 0], expect)


def test_symbols_shortcut_and_glyph_are_both_learnable(symbols_ds):
    from sklearn.linear_model import LogisticRegression

    ds = symbols_ds
    tr, te = ds.arrays("train"), ds.arrays("test")
    corner = lambda a: a.images[:, sym.ZONE_Y:, : sym.ZONE_X, 0].reshape(len(a), -1) / 255.0  # noqa: E731
    clf = LogisticRegression(max_iter=500).fit(corner(tr), ds.spurious_labels("train"))
    assert clf.score(corner(te), ds.spurious_labels("test")) > 0.9  # distractor kind is visible
    # glyph region only (no distractor): a linear model on 2x-pooled pixels beats chance clearly
    glyph = lambda a: a.images[:, :, :, 0].reshape(len(a), 36, 2, 36, 2).mean((2, 4)).reshape(len(a), -1) / 255.0  # noqa: E731
    tr_img = tr.images.copy()
    tr_img[:, sym.ZONE_Y:, : sym.ZONE_X] = 0
    te_img = te.images.copy()
    te_img[:, sym.ZONE_Y:, : sym.ZONE_X] = 0
    tr.images, te.images = tr_img, te_img
    try:
        acc = LogisticRegression(max_iter=1000, C=0.1).fit(glyph(tr), tr.labels).score(glyph(te), te.labels)
    finally:
        ds._splits.clear()
    assert acc > 0.5


def test_symbols_same_seed_same_bytes_other_seed_other_cache(tmp_path, symbols_ds):
    params = dict(SMALL, seed=1)
    again = datasets.load({"name": "symbols", "params": params}, tmp_path / "other")
    assert again.manifest["content_hash"] == symbols_ds.manifest["content_hash"]
    np.testing.assert_array_equal(again.arrays("train").images, symbols_ds.arrays("train").images)
    other = datasets.load({"name": "symbols", "params": dict(SMALL, seed=2)}, tmp_path / "other")
    assert other.folder != again.folder and other.folder.parent == again.folder.parent
    assert other.manifest["content_hash"] != again.manifest["content_hash"]
    # cached: a second load reads the same folder without rewriting it
    stamp = (again.folder / "dataset.json").stat().st_mtime_ns
    third = datasets.load({"name": "symbols", "params": params}, tmp_path / "other")
    assert third.folder == again.folder and (third.folder / "dataset.json").stat().st_mtime_ns == stamp
    # explicit defaults hash like omitted ones
    assert datasets.load({"name": "symbols", "params": dict(params, train_correlation=0.9)},
                         tmp_path / "other").folder == again.folder


def test_symbols_split_pipeline_matches_arrays_and_stats(symbols_ds):
    ds = symbols_ds
    arr = ds.arrays("val")
    got = list(ds.split("val").as_numpy_iterator())
    assert [g[0].decode() for g in got] == list(arr.indices)
    np.testing.assert_array_equal(np.stack([g[1] for g in got]), arr.images.astype(np.float32))
    mean, std = ds.channel_stats()
    tr = ds.arrays("train").images.astype(np.float64)
    assert mean[0] == pytest.approx(tr.mean()) and std[0] == pytest.approx(tr.std())
    img, label = ds.get(arr.indices[7])
    np.testing.assert_array_equal(img, arr.images[7])
    assert label == arr.labels[7]


def test_decoy_digits_swatch_encodes_class_in_train_random_in_test(decoy_ds):
    ds = decoy_ds
    assert ds.image_shape == (48, 48, 1) and len(ds.class_names) == 10
    sizes = ds.manifest["split_sizes"]
    assert sum(sizes.values()) == 1797
    for split in ("train", "val", "test"):
        arr, spur = ds.arrays(split), ds.spurious_labels(split)
        counts = np.bincount(arr.labels, minlength=10)
        assert counts.min() >= 0.9 * counts.mean()  # stratified
        for idx, img, s in zip(arr.indices[:200], arr.images[:200, :, :, 0], spur[:200]):
            x0, y0, x1, y1 = ds.irrelevant_box(idx)
            assert (x1 - x0, y1 - y0) == (6, 6)
            assert (img[y0:y1, x0:x1] == shade(s)).all()
            ox0, oy0, ox1, oy1 = ds.object_box(idx)
            assert x1 < ox0 or x0 >= ox1 or y1 < oy0 or y0 >= oy1  # swatch apart from the digit
            rest = img.copy()
            rest[y0:y1, x0:x1] = 0
            rest[oy0:oy1, ox0:ox1] = 0
            assert not rest.any()
    assert (ds.spurious_labels("train") == ds.arrays("train").labels).all()
    test_rate = (ds.spurious_labels("test") == ds.arrays("test").labels).mean()
    val_rate = (ds.spurious_labels("val") == ds.arrays("val").labels).mean()
    assert val_rate < 0.25  # val is distributed as test (≈ 0.1), so sweeps can choose on it
    assert test_rate < 0.2  # ~1/10 when the shade encodes a random class


def test_decoy_digits_clean_variant_and_fixed_corner(tmp_path, decoy_ds):
    clean = datasets.load({"name": "decoy_digits", "params": {"clean": True}}, tmp_path)
    arr = clean.arrays("test")
    assert clean.irrelevant_mask(arr.indices[0]) is None and (clean.spurious_labels("test") == -1).all()
    # same digits in the same splits, only the swatch differs
    dec = decoy_ds.arrays("test")
    np.testing.assert_array_equal(arr.labels, dec.labels)
    np.testing.assert_array_equal(arr.images[:, 8:40, 8:40], dec.images[:, 8:40, 8:40])
    tl = datasets.load({"name": "decoy_digits", "params": {"corner": "tl", "val_fraction": 0.1}}, tmp_path)
    a = tl.arrays("val")
    assert {tl.irrelevant_box(i) for i in a.indices} == {(1, 1, 7, 7)}


def test_a_font_set_matplotlib_cannot_render_is_one_line_naming_the_cache(monkeypatch):
    def broken(self, s, dpi=72, prop=None, **kwargs):
        raise ValueError("operands could not be broadcast together with shapes (0,) (3,)")

    monkeypatch.setattr(MathTextParser, "parse", broken)
    with pytest.raises(UserError) as err:
        sym._Renderer()
    text = str(err.value)
    assert "\n" not in text and "font set 'dejavusans'" in text and "fontlist-*.json" in text


def test_a_distractor_wider_than_its_zone_is_one_line_naming_the_cache(monkeypatch):
    r = sym._Renderer()
    monkeypatch.setattr(sym._Renderer, "_variant", staticmethod(lambda *a, **k: np.full((15, 40), 200, np.uint8)))
    with pytest.raises(UserError) as err:
        r.sample(0, sym.DISTRACTORS[0], np.random.default_rng(0))
    text = str(err.value)
    assert "\n" not in text and "40×15 px, larger than its 22×22-px zone" in text and "fontlist-*.json" in text
