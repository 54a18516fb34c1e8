"""vis_exp chapter-7 analyses: synthetic features with known answers, tiny models for the CLIs."""
import json
import types

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from vis_exp import cam_dump, embedding, expert_labels, feature_change, feature_ranking, filter_grids, mask_filters
from vis_exp import gap_features


# ----- tiny model + data (shared by the CLI tests) ------------------------------------
@pytest.fixture(scope="module")
def tiny():
    from classification_models.classifier import Classifier
    from classification_models.models import ModelParams, build_model
    from datasets.base import ArrayDataset

    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n) % 2
        x = rng.integers(0, 60, (n, 16, 16, 1)).astype(np.uint8)
        x[y == 1, 4:12, 4:12] = 220  # a bright square for class 1
        return x, y

    ds = ArrayDataset(["a", "b"], {"train": split(24), "val": split(12), "test": split(12)})
    params = ModelParams(filters=(4, 8), convs_per_block=1, last_conv_filters=8)
    clf = Classifier(build_model(input_shape=(16, 16, 1), num_classes=2, params=params, seed=1), ["a", "b"])
    tr = types.SimpleNamespace(class_names=["a", "b"], path="r.json", dataset_spec={"name": "arrays", "params": {}})
    return tr, clf, ds


@pytest.fixture
def tiny_loaded(tiny, monkeypatch):
    """The vis_exp CLIs load the tiny model and data set for any train result."""
    for module in (gap_features, cam_dump, embedding, feature_change, feature_ranking, filter_grids, mask_filters):
        monkeypatch.setattr(module, "load_model_and_data", lambda result, data_root=None: tiny)
    return tiny


def assert_png(path, min_side=100):
    img = np.asarray(Image.open(path).convert("L"), float)
    assert min(img.shape) >= min_side and (img < 250).mean() > 0.01


# ----- feature ranking -----------------------------------------------------------------
def _synthetic(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 10))
    x[:, 6] += 2.5 * (y == 1)
    x[:, 3] += 2.5 * (y == 2)
    x[:, 8] += 2.0 * (y == 0)
    return x, y


def test_informative_features_rank_first_and_cut():
    x, y = _synthetic(240, 0)
    xv, yv = _synthetic(240, 1)
    r = feature_ranking.analyse(train_x=x, train_y=y, val_x=xv, val_y=yv, full_accuracy=0.75, n_estimators=50)
    assert set(r["order"][:3]) == {3, 6, 8}
    assert set(r["l1"]["support"]) >= {3, 6, 8}
    assert r["curve"]["k"] == list(range(1, 11))
    acc = r["curve"]["accuracy"]
    assert acc[0] < 0.75 and acc[2] >= 0.75  # one feature is not enough, the three informative ones are
    assert r["cut"] == next(k for k, a in zip(r["curve"]["k"], acc) if a >= 0.75) <= 3
    assert r["relevant"] == r["order"][: r["cut"]]


def test_find_cut_and_head_accuracy():
    assert feature_ranking.find_cut([1, 2, 3], [0.5, 0.7, 0.8], 0.7) == 2
    assert feature_ranking.find_cut([1, 2], [0.5, 0.6], 0.7) is None
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert feature_ranking.head_accuracy(f, np.array([0, 1, 1]), np.eye(2), np.zeros(2)) == pytest.approx(2 / 3)


def test_feature_ranking_cli(tiny_loaded, tmp_path):
    assert feature_ranking.main(["result.json", "--out", str(tmp_path), "--n-estimators", "20"]) == 0
    r = json.loads((tmp_path / "ranking.json").read_text())
    assert sorted(r["order"]) == list(range(8)) and len(r["curve"]["accuracy"]) == 8
    assert_png(tmp_path / "accuracy_vs_features.png")


# ----- filter grids ----------------------------------------------------------------------
def test_bracket_sample_exact():
    values = np.array([0.0, 0.05, 0.5, 0.95, 1.0, 0.96, 0.97])
    rows = filter_grids.bracket_sample(values=values, n_brackets=2, per_bracket=9)
    assert rows == [[2, 3, 4, 5, 6], [0, 1]]  # [0.5, 1.0] (top edge included), then [0, 0.5)
    rows = filter_grids.bracket_sample(values=np.arange(100.0), n_brackets=9, per_bracket=3, seed=0)
    assert len(rows) == 9 and all(len(r) == 3 for r in rows)
    assert all(88 <= v <= 99 for v in rows[0]) and all(v <= 11 for v in rows[-1])
    with pytest.raises(UserError):
        filter_grids.bracket_sample(values=np.array([]))


def test_otsu_mask_known_threshold():
    rng = np.random.default_rng(0)
    fmap = 1.0 + 0.2 * rng.random((8, 8))
    fmap[:, 5:] += 4.0  # two clusters, ~[1, 1.2] and ~[5, 5.2]: Otsu separates them
    assert (filter_grids.otsu_mask(fmap=fmap) == (fmap > 3.0)).all()
    assert not filter_grids.otsu_mask(fmap=np.ones((4, 4))).any()
    # grid map upsampled to the image size, then masked: only the active quadrant survives
    grid = np.zeros((1, 2, 2))
    grid[0, 1, 1] = 4.0
    up = filter_grids.upsample_maps(grid, (8, 8))
    shown = filter_grids.masked_images(np.full((1, 8, 8, 1), 200, np.uint8), up)
    assert shown.shape == (1, 8, 8, 3)
    assert shown[0, 7, 7, 0] == 200 and shown[0, 0, 0, 0] == 0 and shown[0, :4, :4].max() == 0


def test_filter_grids_cli(tiny_loaded, tmp_path):
    assert filter_grids.main(["r.json", "--out", str(tmp_path), "--filters", "0", "3", "--brackets", "3",
                              "--per-bracket", "3"]) == 0
    assert_png(tmp_path / "filter_000.png")
    assert (tmp_path / "filter_003.pdf").exists() and not (tmp_path / "filter_001.png").exists()
    with pytest.raises(UserError, match="out of range"):
        filter_grids.main(["r.json", "--out", str(tmp_path), "--filters", "8"])


# ----- expert labels -----------------------------------------------------------------------
def test_expert_vs_ranking_report(tmp_path):
    order = [4, 1, 0, 2, 3, 5]  # cut 2 -> relevant {4, 1}
    expert = {4: "relevant", 1: "irrelevant", 0: "irrelevant", 2: "relevant", 3: "irrelevant"}
    r = expert_labels.compare(order=order, cut=2, expert=expert)
    rel = r["report"]["relevant"]
    assert rel["precision"] == pytest.approx(0.5) and rel["recall"] == pytest.approx(0.5)
    assert r["report"]["irrelevant"]["precision"] == pytest.approx(2 / 3)
    assert r["unlabelled"] == [5] and r["n_labelled"] == 5
    ranking = tmp_path / "ranking.json"
    ranking.write_text(json.dumps({"order": order, "cut": 2}))
    labels = tmp_path / "expert.json"
    labels.write_text(json.dumps({"relevant": [4, 2], "irrelevant": [1, 0, 3]}))
    assert expert_labels.main([str(ranking), str(labels), "--out", str(tmp_path / "o")]) == 0
    md = (tmp_path / "o" / "expert_report.md").read_text().splitlines()
    assert md[2] == "| irrelevant | 0.67 | 0.67 | 0.67 | 3 |"
    assert md[3] == "| relevant | 0.50 | 0.50 | 0.50 | 2 |"
    labels.write_text(json.dumps({"relevant": [4], "irrelevant": [4]}))
    with pytest.raises(UserError, match="both relevant and irrelevant"):
        expert_labels.main([str(ranking), str(labels), "--out", str(tmp_path / "o")])


# ----- mask filters ------------------------------------------------------------------------
def test_top_filters_in_mask_exact():
    acts = np.zeros((4, 4, 5))
    acts[:2, :2, 3] = 9.0  # filter 3 fires in the masked corner
    acts[:, :, 1] = 1.0
    acts[2:, 2:, 0] = 50.0  # strong, but outside the mask
    mask = np.zeros((4, 4), np.uint8)
    mask[:2, :2] = 255
    top = mask_filters.top_filters_in_mask(activations_up=acts, mask=mask, top=3)
    assert top == [(3, 9.0), (1, 1.0), (0, 0.0)]  # ties: lower filter id first
    with pytest.raises(UserError, match="no pixel"):
        mask_filters.top_filters_in_mask(activations_up=acts, mask=np.zeros((4, 4)))


def test_mask_filters_cli(tiny_loaded, tmp_path):
    from common.images import write_mask
    from datasets.selection import SelectionItem, save_selection

    m = np.zeros((16, 16), np.uint8)
    m[:8, :8] = 255
    write_mask(tmp_path / "masks/train_00001.png", m)
    save_selection(tmp_path / "sel.json", "r.json", [SelectionItem("train_00001", "masks/train_00001.png", 1)])
    (tmp_path / "ranking.json").write_text(json.dumps({"order": list(range(8)), "relevant": [0, 1, 2]}))
    assert mask_filters.main(["r.json", str(tmp_path / "sel.json"), "--ranking", str(tmp_path / "ranking.json"),
                              "--top", "4", "--out", str(tmp_path / "o")]) == 0
    out = json.loads((tmp_path / "o/mask_filters.json").read_text())
    top = out["items"][0]["top"]
    assert len(top) == 4 and all(t["relevant"] == (t["filter"] < 3) for t in top)
    assert (tmp_path / "o/mask_filters.md").read_text().startswith("| Image | #1 | #2 | #3 | #4 | irrelevant share |")
    save_selection(tmp_path / "empty.json", "r.json", [])
    with pytest.raises(UserError, match="is empty"):
        mask_filters.main(["r.json", str(tmp_path / "empty.json"), "--ranking", str(tmp_path / "ranking.json"),
                           "--out", str(tmp_path / "o")])


# ----- feature change ----------------------------------------------------------------------
def test_feature_change_math():
    before = np.zeros((3, 64))
    after = np.zeros((3, 64))
    after[:, 10] = 2.0
    after[:, 20] = -1.0
    change = feature_change.mean_change(before=before, after=after)
    grid = feature_change.as_grid(change)
    assert grid.shape == (8, 8) and grid[1, 2] == 2.0 and grid[2, 4] == -1.0
    up, down = feature_change.extremes(change, 1)
    assert up == [10] and down == [20]
    assert np.isnan(feature_change.as_grid(np.ones(10))[1, 7])


def test_feature_change_cli(tiny_loaded, tmp_path):
    _, clf, _ = tiny_loaded
    from classification_models.classifier import Classifier
    from classification_models.models import ModelParams, build_model

    other = Classifier(build_model(input_shape=(16, 16, 1), num_classes=2, seed=7,
                                   params=ModelParams(filters=(4, 8), convs_per_block=1, last_conv_filters=8)))
    other.save(tmp_path / "after.keras")
    assert feature_change.main(["r.json", "--after", str(tmp_path / "after.keras"), "--width", "4",
                                "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o/feature_change.json").read_text())
    assert np.allclose(res["change"], np.array(res["after_mean"]) - np.array(res["before_mean"]))
    md = (tmp_path / "o/feature_change.md").read_text().splitlines()
    assert md[0] == "| first feature | +0 | +1 | +2 | +3 |" and len(md) == 4
    assert_png(tmp_path / "o/feature_change_grid.png")
    assert_png(tmp_path / "o" / f"feature_{res['largest_increase'][0]:03d}.png")


# ----- embedding and CAM dump ---------------------------------------------------------------
def test_embedding_cli(tiny_loaded, tmp_path):
    assert embedding.main(["r.json", "--split", "val", "--out", str(tmp_path), "--tsne-iter", "250"]) == 0
    e = json.loads((tmp_path / "embedding.json").read_text())
    assert np.asarray(e["pca"]).shape == (12, 2) and np.asarray(e["tsne"]).shape == (12, 2)
    assert_png(tmp_path / "embedding_pca.png")
    assert_png(tmp_path / "embedding_tsne.png")


def test_cam_dump_cli(tiny_loaded, tmp_path):
    assert cam_dump.main(["r.json", "--split", "test", "--class", "true", "--out", str(tmp_path)]) == 0
    info = json.loads((tmp_path / "cams.json").read_text())
    assert len(info["items"]) == 12
    assert [it["cam_class"] for it in info["items"]] == [0, 1] * 6
    img = np.asarray(Image.open(tmp_path / "test_00003.png"))
    assert img.shape == (16, 16, 3) and img.std() > 0
    with pytest.raises(UserError, match="out of range"):
        cam_dump.main(["r.json", "--class", "5", "--out", str(tmp_path)])


def test_feature_criteria_exact():
    # features 0..3; importance order 2, 0, 3, 1 with cut 2 -> relevant {2, 0}
    res = feature_change.feature_criteria(change=np.array([0.5, -0.2, -0.1, 0.3]), order=[2, 0, 3, 1], cut=2,
                                          in_masks=[3])
    assert res["importance_rank"] == [1, 3, 0, 2]
    assert res["change_rank"] == [0, 3, 2, 1]
    assert res["relevant"] == [True, False, True, False]
    assert res["in_masks"] == [False, False, False, True]
    assert res["counts"] == {"relevant": {"up": 1, "down": 1}, "irrelevant": {"up": 1, "down": 1}}
    # importance ranks [1,3,0,2] vs changes [.5,-.2,-.1,.3]: change ranks (asc) [4,1,2,3] -> rho = -0.4
    assert res["spearman"] == pytest.approx(-0.4)
    with pytest.raises(UserError, match="orders 3 features but the change has 4"):
        feature_change.feature_criteria(change=np.zeros(4), order=[0, 1, 2], cut=1)
