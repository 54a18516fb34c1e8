"""select_tool views without Tk: CAM cache, rendering, suggested order, loader errors."""
import json

import numpy as np
import pytest

from classification_models.cam import in_mask_energy
from common.errors import UserError
from select_tool.view.render import compose, jet_lut, probability_bars, to_ppm
from select_tool.model.suggest import combined_region, suggested_order
from tests.fixtures_select import select_classifier, select_dataset


@pytest.fixture(scope="module")
def select_clf_and_data():
    ds = select_dataset(n_train=10)
    tr = ds.arrays("train")
    clf = select_classifier(ds.image_shape, steps=2, images=tr.images, labels=tr.labels)
    return clf, ds


def test_cam_cache_matches_the_batched_cam_call(select_clf_and_data):
    from classification_models.cam import normalize_per_map
    from select_tool.model.cam_cache import CamCache

    clf, ds = select_clf_and_data
    images = ds.arrays("train").images
    cache = CamCache(clf, images, chunk=4)  # 3 chunks, background thread
    cache.request(9)
    assert cache.wait(timeout=60)
    ref = clf.cams(images, classes=None, upsample=True)
    np.testing.assert_allclose(cache.probs, ref.probs, atol=1e-5)
    for pos in (0, 5, 9):
        for c in range(3):
            raw = cache.cam(pos, c, normalized=False)
            assert raw.shape == (24, 24)
            scale = max(1e-6, float(np.abs(ref.cams[pos, :, :, c]).max()))
            np.testing.assert_allclose(raw / scale, ref.cams[pos, :, :, c] / scale, atol=2e-3)
            np.testing.assert_allclose(cache.cam(pos, c), normalize_per_map(raw), atol=1e-6)
    assert cache.cam(0, 1) is cache.cam(0, 1)  # LRU hit


def test_cam_cache_reports_not_ready(select_clf_and_data):
    from select_tool.model.cam_cache import CamCache

    clf, ds = select_clf_and_data
    cache = CamCache(clf, ds.arrays("train").images, chunk=4, start=False)
    assert cache.cam(0, 0) is None and cache.probs_of(0) is None and cache.progress == (0, 10)
    cache.compute_now(5)
    assert cache.has(4) and cache.has(7) and not cache.has(0) and cache.probs_of(5) is not None


def test_compose_values():
    img = np.full((2, 3, 1), 100, np.uint8)
    mask = np.zeros((2, 3), np.uint8)
    mask[1, 2] = 255
    out = compose(img, cam=None, mask=mask, zoom=2, mask_alpha=0.5)
    assert out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(out[2:4, 4:6].reshape(-1, 3), [[178, 50, 178]] * 4)  # 0.5·100 + 0.5·(255,0,255)
    cam = np.array([[0.0, 1.0, 2.0], [-1.0, 0.0, 2.0]])
    out = compose(img, cam=cam, mask=None, opacity=1.0)
    lut = jet_lut()
    np.testing.assert_array_equal(out[0, 2], lut[255])  # per-map max -> top of the colour map
    np.testing.assert_array_equal(out[1, 0], lut[0])  # negatives shown as 0
    np.testing.assert_array_equal(out[0, 1], lut[128])
    np.testing.assert_array_equal(lut[0], [0, 0, 128])
    hidden = compose(img, cam=cam, mask=mask, opacity=1.0, show_overlay=False)
    assert (hidden == 100).all()
    assert to_ppm(out[:1, 2:3]) == b"P6 1 1 255\n" + bytes(lut[255])


def test_probability_bars_marks_true_and_predicted():
    text = probability_bars(np.array([0.1, 0.7, 0.2]), ["a", "bb", "c"], true_class=0)
    lines = text.splitlines()
    assert lines[0].startswith("*  0 a ") and lines[1].startswith(" > 1 bb") and "0.70" in lines[1]
    assert lines[1].count("█") == 14
    assert "computing" in probability_bars(None, ["a"], 0)


def test_in_mask_energy_and_suggested_order():
    region = np.zeros((4, 4), np.uint8)
    region[:, :1] = 255
    cam = np.zeros((4, 4))
    cam[:, 0] = 1.0
    cam[:, 1] = 3.0
    cam[:, 3] = -5.0  # negatives are not energy for the class
    assert in_mask_energy(cams=cam[None], masks=region[None])[0] == pytest.approx(0.25)
    assert in_mask_energy(cams=-cam[None], masks=region[None])[0] == 0.0  # the positive evidence is outside
    # only negative evidence: no share (NaN), which the triage order ranks as nothing inside the region
    assert np.isnan(in_mask_energy(cams=-np.abs(cam)[None], masks=region[None])[0])

    indices = ["i0", "i1", "i2", "i3", "i4", "i5"]
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.9, 0.1, 0.0],   # correct -> never suggested
                      [0.2, 0.8, 0.0],   # wrong, share 0.25
                      [0.6, 0.3, 0.1],   # wrong, share 0.75
                      [0.5, 0.2, 0.3],   # wrong, no known region, p_true 0.2
                      [0.1, 0.8, 0.1],   # wrong, no known region, p_true 0.1
                      [0.3, 0.3, 0.4]])  # correct
    cam2 = np.where(region > 0, 3.0, 0.0)
    cam2[1, 1] = 4.0  # 12 of 16 inside the region -> 0.75
    cams = {1: cam, 2: cam2}
    regions = {"i0": region, "i1": region, "i2": region}
    order = suggested_order(indices=indices, labels=labels, probs=probs, true_cam=lambda p: cams[p],
                            region=lambda i: regions.get(i))
    assert [i for i, _ in order] == ["i2", "i1", "i4", "i3"]
    assert order[0][1] == pytest.approx(12 / 16) and order[1][1] == pytest.approx(0.25) and order[2][1] is None
    # a misclassified image whose CAM has no positive evidence ranks after the ones with a share
    cams[1] = -np.abs(cam)
    order = suggested_order(indices=indices, labels=labels, probs=probs, true_cam=lambda p: cams[p],
                            region=lambda i: regions.get(i))
    assert [i for i, _ in order] == ["i2", "i1", "i4", "i3"] and order[1][1] == 0.0


def test_combined_region_unions_ground_truth_and_expert_masks():
    ds = select_dataset(n_train=4)
    own = np.zeros((24, 24), np.uint8)
    own[0, 0] = 255
    region = combined_region(ds, {"train_00000": own, "train_00001": np.zeros((24, 24), np.uint8)})
    r0 = region("train_00000")
    assert r0[0, 0] == 255 and r0[20, 2] == 255 and int((r0 > 0).sum()) == 17
    assert int((region("train_00001") > 0).sum()) == 16
    assert combined_region(select_dataset(4, with_gt=False), {})("train_00002") is None


def test_loader_errors(tmp_path, select_clf_and_data):
    from select_tool.model.loader import open_result

    with pytest.raises(UserError, match="does not exist"):
        open_result(tmp_path / "nope.json")
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"model_path": "gone.keras", "dataset": {"name": "symbols"},
                               "class_names": ["a"], "image_shape": [72, 72, 1]}))
    with pytest.raises(UserError, match="model file .*gone.keras' does not exist"):
        open_result(bad)
    bad.write_text(json.dumps({"model_path": "m.keras", "dataset": {"name": "no_such_set"},
                               "class_names": ["a"], "image_shape": [72, 72, 1]}))
    (tmp_path / "m.keras").write_text("x")
    with pytest.raises(UserError, match="unknown data set 'no_such_set'"):
        open_result(bad)
    clf, ds = select_clf_and_data
    opened = open_result(bad, classifier=clf, dataset=ds, split="val")
    assert len(opened.split) == 3 and opened.class_names == ds.class_names


def test_cam_cache_scaled_per_map_and_common(select_clf_and_data):
    from select_tool.model.cam_cache import CamCache

    clf, ds = select_clf_and_data
    cache = CamCache(clf, ds.arrays("train").images, chunk=4, start=False)
    assert cache.scaled(0, 0) == (None, 0.0, 0.0)
    cache.compute_now(0)
    per = [cache.scaled(0, c) for c in range(3)]
    common = [cache.scaled(0, c, common=True) for c in range(3)]
    scale = common[0][1]
    assert all(c[1] == scale for c in common)  # one scale for every class of the image
    assert scale == pytest.approx(max(max(p[2] for p in per), float(cache.grid[0].max())))
    # every class map of the image has a positive peak: each is scaled to reach 1
    assert all(own > 0 for _, _, own in per)
    for c in range(3):
        m, s, own = per[c]
        assert s == pytest.approx(own)
        assert m.max() == pytest.approx(1.0)
        raw = cache.cam(0, c, normalized=False)
        np.testing.assert_allclose(common[c][0], np.clip(raw / scale, 0, 1), atol=1e-6)


def test_thumbnail_shrinks_keeps_aspect_and_tints_the_mask():
    from select_tool.view.render import MASK_COLOR, thumbnail

    image = np.full((32, 64, 1), 100, np.uint8)
    mask = np.zeros((32, 64), np.uint8)
    mask[:, :16] = 255
    pic = thumbnail(image, mask, 48)
    assert pic.shape == (24, 48, 3) and pic.dtype == np.uint8
    np.testing.assert_array_equal(pic[:, 13:], 100)  # unmasked: the grey image
    want = np.round(100 * 0.4 + np.asarray(MASK_COLOR) * 0.6).astype(np.uint8)
    np.testing.assert_array_equal(pic[:, :12], np.broadcast_to(want, (24, 12, 3)))
    np.testing.assert_array_equal(thumbnail(image, None, 48), np.full((24, 48, 3), 100, np.uint8))


def test_quit_choices_name_what_happens_to_a_running_retraining():
    from select_tool.view.exit_flow import quit_choices

    assert quit_choices(changes=False, running=True) == [("quit", "Cancel the run and quit"),
                                                         ("cancel", "Keep working")]
    assert quit_choices(changes=True, running=False) == [("export", "Export and quit"),
                                                         ("quit", "Quit without exporting"), ("cancel", "Cancel")]
    assert [k for k, _ in quit_choices(changes=True, running=True)] == ["export", "quit", "cancel"]
