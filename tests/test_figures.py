"""plot_utils.figures: figures exist (PNG + PDF), have a size and are not blank; the math is exact."""
import json

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from plot_utils import figures


def assert_figure(path_png, min_side=200):
    assert path_png.exists() and path_png.with_suffix(".pdf").exists()
    assert path_png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    img = np.asarray(Image.open(path_png).convert("L"), float)
    assert min(img.shape) >= min_side
    non_white = (img < 250).mean()
    assert non_white > 0.01, f"{path_png} looks blank ({non_white:.4f} non-white)"


def test_loss_figure_from_history(real_runs, tmp_path):
    from common.run_files import load_history_file
    from plot_utils.results import load_history

    run = real_runs.retrain
    out = tmp_path / "fig"
    assert figures.main(["loss", str(run), "--out", str(out)]) == 0
    assert_figure(out / "loss_continued.png")
    assert_figure(out / "loss_pasa.png")
    rows = load_history_file(run / "pasa" / "history.jsonl")
    series = figures.history_series(load_history(run), "pasa")
    assert series["iteration"].tolist() == [1, 2]
    assert series["ce"].tolist() == pytest.approx([r.ce for r in rows])
    assert series["penalty"].tolist() == pytest.approx([r.penalty for r in rows])
    idx = sorted(rows[1].selected_p_true)[-1]
    assert series["p_true"][idx][1] == pytest.approx(rows[1].selected_p_true[idx])
    with pytest.raises(UserError, match=r"no rows for method 'rrr' \(methods: continued, pasa\)"):
        figures.history_series(load_history(run), "rrr")


def test_sweep_figures(tmp_path):
    # sweep files as the sweep writes them (common.sweep_file.SweepFile, through write_file)
    from common.run_files import write_file
    from common.sweep_file import SweepBase, SweepFile

    def sweep_file(kind, x, points):
        best = max(points, key=lambda p: p["val_accuracy"])
        return SweepFile(kind=kind, x=x, base=SweepBase(val=0.7, test=0.6), chosen_on="val_accuracy", best=best,
                         points=points)

    lam = write_file(tmp_path / "lam.json", sweep_file("lambda", "lambda", [
        {"lambda": 1e-4 * 2 ** i, "val_accuracy": 0.7 + 0.01 * i, "test_accuracy": 0.6} for i in range(5)]))
    masks = write_file(tmp_path / "masks.json", sweep_file("masks", "n_masks", [
        {"n_masks": n, "val_accuracy": 0.6 + n / 1000} for n in (250, 5, 50)]))
    out = tmp_path / "fig"
    figures.main(["sweep", str(lam), "--log-x", "--baseline", "0.7", "--out", str(out)])
    figures.main(["sweep", str(masks), "--name", "masks_sweep", "--out", str(out)])
    assert_figure(out / "lambda_sweep.png")
    assert_figure(out / "masks_sweep.png")
    x, y = figures.sweep_points(json.loads(masks.read_text()), source=str(masks))
    assert x.tolist() == [5, 50, 250] and y.tolist() == pytest.approx([0.605, 0.65, 0.85])
    with pytest.raises(UserError, match=r"points\[0\] has no 'beta'"):
        figures.sweep_points(json.loads(masks.read_text()), "beta")
    # the layouts the sweep never writes are refused, naming the field
    with pytest.raises(UserError, match=r"^sweep: the top level must be a JSON object, got list$"):
        figures.sweep_points([{"n_masks": 5, "accuracy": {"val": 0.6}}], "n_masks")
    with pytest.raises(UserError, match=r"^sweep: unknown key 'rows'"):
        figures.sweep_points({**json.loads(masks.read_text()), "rows": []})
    with pytest.raises(UserError, match=r"^sweep: points\[0\] has no 'val_accuracy'"):
        data = json.loads(masks.read_text())
        figures.sweep_points({**data, "points": [{"n_masks": 5, "accuracy": {"val": 0.6}}]})


def test_act_without_masks_and_histogram(tmp_path):
    acts = np.zeros((2, 2, 2, 4))
    acts[0] = 1.0
    acts[1, 0, 0, 0] = 10.0
    values = figures.act_without_masks(activations=acts)
    # image 0: each filter sums 4 cells of 1 -> 4 / (4+1) = 0.8 ; image 1: (10/5)/4 = 0.5
    assert values.tolist() == pytest.approx([0.8, 0.5])
    rng = np.random.default_rng(0)
    figures.save_figure(figures.act_histogram_figure(rng.gamma(2.0, 0.3, 500)), tmp_path, "act_histogram")
    assert_figure(tmp_path / "act_histogram.png")


def test_pasa_penalty_and_surface(tmp_path):
    z = figures.pasa_penalty(act=np.array([1.0, 1.0, 2.0]), p_true=np.array([0.0, 0.7, 0.7]), base=0.4, threshold=0.7)
    assert z.tolist() == pytest.approx([1.0, 0.4, 0.8])
    figures.main(["surface", "--out", str(tmp_path)])
    assert_figure(tmp_path / "pasa_surface.png")
    assert figures.run_main(figures.main, ["surface", "--base", "0", "--out", str(tmp_path)]) == 2


# ----- report grids (thesis Table 3.7, Tables 6.x, Fig 7.10) --------------------------
def _image_axes(fig):
    return [ax for ax in fig.axes if ax.get_images()]


def test_base_cams_figure_rows_per_class_three_panels_per_image():
    from plot_utils.cam_figures import base_cams_figure

    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 2, 2])  # class 1 has one image: its row is padded with empty axes
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.1, 0.3]])
    fig = base_cams_figure(images=rng.integers(0, 255, (5, 8, 8, 1), dtype=np.uint8), labels=labels, probs=probs,
                           cams_true=rng.random((5, 8, 8)), cams_pred=rng.random((5, 8, 8)),
                           indices=[f"val_{i}" for i in range(5)], class_names=["a", "b", "c"], title="t")
    assert len(fig.axes) == 3 * 6 and len(_image_axes(fig)) == 5 * 3
    titles = [ax.get_title() for ax in fig.axes]
    assert "true a (0.90)" in titles and "pred a (0.90)" in titles  # correct prediction
    assert "true a (0.20)" in titles and "pred b (0.70)" in titles  # wrong one, in red
    wrong = next(ax for ax in fig.axes if ax.get_title() == "pred b (0.70)")
    assert wrong.title.get_color() == "tab:red"
    assert [fig.axes[r * 6].get_ylabel() for r in range(3)] == ["a", "b", "c"]


def test_mosaic_figure_places_every_tile_and_its_notes_in_one_axes():
    from plot_utils.cam_figures import cam_grid_figure, mosaic_figure

    tiles = [[np.full((10, 10, 3), 10 * (3 * r + c + 1), np.uint8) if (r, c) != (1, 2) else None for c in range(3)]
             for r in range(2)]
    notes = [[f"n{r}{c}" for c in range(3)] for r in range(2)]
    fig = mosaic_figure(tiles, notes=notes, col_titles=["a", "b", "c"], row_labels=["r0", "r1"], title="T",
                        tile_in=1.0, bold_cols={1})
    (ax,) = fig.axes
    canvas = ax.get_images()[0].get_array()
    values = {int(v) for v in np.unique(canvas)}
    assert {10, 20, 30, 40, 50} <= values and 60 not in values  # the empty cell stays empty
    for value in (10, 20, 30, 40, 50):  # each tile whole, 10 × 10 pixels
        assert int((canvas[..., 0] == value).sum()) == 100
    texts = {t.get_text(): t for t in ax.texts}
    assert {"n00", "n01", "n02", "n10", "n11", "a", "b", "c", "r0", "r1", "T"} <= set(texts) and "n12" not in texts
    assert texts["b"].get_fontweight() == "bold" and texts["a"].get_fontweight() == "normal"
    rng = np.random.default_rng(0)
    cams = {"indices": ["train_1", "train_2"], "images": rng.integers(0, 255, (2, 8, 8, 1), dtype=np.uint8),
            "masks": np.zeros((2, 8, 8), np.uint8), "labels": np.array([0, 1]),
            "cams_before": rng.random((2, 8, 8)), "cams_after": rng.random((2, 8, 8)),
            "probs_before": np.array([[0.9, 0.1], [0.6, 0.4]]), "probs_after": np.array([[0.8, 0.2], [0.3, 0.7]])}
    grid = {t.get_text() for t in cam_grid_figure(cams, class_names=["x", "y"], title="g").axes[0].texts}
    assert {"train_2", "true: y", "pred x (0.60)\np_true 0.40", "pred y (0.70)\np_true 0.70", "CAM after"} <= grid


def test_example_grid_figure_one_row_per_class():
    from plot_utils.cam_figures import example_grid_figure

    groups = [np.zeros((4, 8, 8, 1), np.uint8), np.zeros((2, 8, 8, 3), np.uint8), np.zeros((0, 8, 8, 1), np.uint8)]
    fig = example_grid_figure(images_by_class=groups, class_names=["x", "y", "z"])
    assert len(fig.axes) == 3 * 4 and len(_image_axes(fig)) == 6
    assert [fig.axes[r * 4].get_ylabel() for r in range(3)] == ["x", "y", "z"]
    assert fig.axes[8].texts[0].get_text() == "no images"
    with pytest.raises(ValueError, match="3 image groups for 2 class names"):
        example_grid_figure(images_by_class=groups, class_names=["x", "y"])


def test_feature_criteria_figure(tmp_path):
    from vis_exp.feature_change import feature_criteria

    crit = feature_criteria(change=np.array([0.5, -0.2, -0.1, 0.3]), order=[2, 0, 3, 1], cut=2, in_masks=[3])
    fig = figures.feature_criteria_figure(crit, label=[0, 1], title="criteria")
    scatter, bars = fig.axes
    assert len(scatter.collections) == 3  # relevant, irrelevant, ringed in-mask features
    assert [t.get_text() for t in scatter.texts] == ["0", "1"]
    assert [p.get_height() for p in bars.patches] == [1, 1, 1, 1]  # rose R, I; fell R, I
    figures.save_figure(fig, tmp_path, "criteria")
    assert_figure(tmp_path / "criteria.png")
