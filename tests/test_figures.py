"""plot_utils.figures: figures exist (PNG + PDF), have a size and are not blank; the math is exact."""
import json

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from plot_utils import figures


def write_json(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


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
    lam = write_json(tmp_path / "lam.json", {"points": [
        {"lambda": 1e-4 * 2 ** i, "val_accuracy": 0.7 + 0.01 * i} for i in range(5)]})
    masks = write_json(tmp_path / "masks.json", [
        {"n_masks": n, "accuracy": {"val": 0.6 + n / 1000}} for n in (250, 5, 50)])
    out = tmp_path / "fig"
    figures.main(["sweep", str(lam), "--x", "lambda", "--log-x", "--baseline", "0.7", "--out", str(out)])
    figures.main(["sweep", str(masks), "--x", "n_masks", "--name", "masks_sweep", "--out", str(out)])
    assert_figure(out / "lambda_sweep.png")
    assert_figure(out / "masks_sweep.png")
    x, y = figures.sweep_points(json.loads(masks.read_text()), "n_masks")
    assert x.tolist() == [5, 50, 250] and y.tolist() == pytest.approx([0.605, 0.65, 0.85])
    with pytest.raises(UserError, match="point 0 has no 'beta'"):
        figures.sweep_points(json.loads(masks.read_text()), "beta")


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
