"""plot_utils.tables on small hand-written run directories: exact LaTeX/Markdown rows."""
import json

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from plot_utils import tables
from plot_utils.results import load_run, load_runs
from tests.fixtures_tables import make_retrain_run, make_train_run, write_json


@pytest.fixture
def runs(tmp_path):
    train = make_train_run(tmp_path)
    retrain = make_retrain_run(tmp_path, train)
    return train, retrain


def test_accuracy_table_exact_rows(runs):
    t = tables.accuracy_table(load_runs(list(runs)))
    lines = t.latex.splitlines()
    assert lines[0] == r"\begin{tabular}{lrrr}"
    assert lines[1:8] == [
        r"\toprule",
        r"Method & Train & Validation & Test \\",
        r"\midrule",
        r"Base & 0.820 & 0.760 & 0.750 \\",
        r"continued & 0.874 & 0.760 & 0.720 \\",
        r"pasa & 0.850 & 0.780 & 0.750 \\",
        r"\bottomrule",
    ]
    assert t.markdown.splitlines() == [
        "| Method | Train | Validation | Test |",
        "| --- | ---: | ---: | ---: |",
        "| Base | 0.820 | 0.760 | 0.750 |",
        "| continued | 0.874 | 0.760 | 0.720 |",
        "| pasa | 0.850 | 0.780 | 0.750 |",
    ]


def test_retrain_run_alone_uses_summary_base_and_marks_missing_per_class(runs):
    _, retrain = runs
    acc = tables.accuracy_table(load_runs([retrain]))
    assert r"Base & 0.820 & 0.760 & 0.750 \\" in acc.latex.splitlines()
    pc = tables.per_class_table(load_runs([retrain]))
    first = pc.markdown.splitlines()[2]
    assert first.startswith("| Base | eps | missing: summary.json base.report.train |")


def test_per_class_table_exact_rows(runs):
    t = tables.per_class_table(load_runs(list(runs)))
    lines = t.latex.splitlines()
    assert r" &  & \multicolumn{3}{c}{Train} & \multicolumn{3}{c}{Validation} & \multicolumn{3}{c}{Test} \\" in lines
    assert (r"\multirow[t]{2}{*}{Base} & eps & 0.76 & 0.74 & 0.75 & 0.67 & 0.66 & 0.66 & 0.63 & 0.59 & 0.61 \\"
            in lines)
    assert r" & xi & 0.89 & 0.72 & 0.79 & 0.71 & 0.57 & 0.63 & 0.65 & 0.53 & 0.58 \\" in lines
    md = t.markdown.splitlines()
    assert md[0] == ("| Method | Class | Train P | Train R | Train F1 | Validation P | Validation R | Validation F1 "
                     "| Test P | Test R | Test F1 |")
    assert md[3] == "|  | xi | 0.80 | 0.87 | 0.83 | 0.73 | 0.78 | 0.75 | 0.76 | 0.74 | 0.75 |"
    assert md[4] == "| continued | eps | 0.79 | 0.69 | 0.74 | 0.71 | 0.65 | 0.68 | 0.70 | 0.63 | 0.66 |"


def test_missing_split_is_a_marked_cell(tmp_path):
    train = make_train_run(tmp_path, drop_val=True)
    t = tables.accuracy_table(load_runs([train]))
    assert r"Base & 0.820 & missing: metrics.json val & 0.750 \\" in t.latex.splitlines()
    assert "| Base | 0.820 | missing: metrics.json val | 0.750 |" in t.markdown.splitlines()
    pc = tables.per_class_table(load_runs([train]))
    assert "missing: metrics.json val" in pc.markdown.splitlines()[2]


def test_missing_method_value_names_the_key(runs):
    _, retrain = runs
    summary = json.loads((retrain / "summary.json").read_text())
    del summary["methods"]["pasa"]["accuracy"]["test"]
    write_json(retrain / "summary.json", summary)
    t = tables.accuracy_table(load_runs([retrain]))
    assert r"pasa & 0.850 & 0.780 & missing: summary.json methods.pasa.accuracy.test \\" in t.latex.splitlines()


def test_mixed_data_sets_are_refused_naming_both(tmp_path):
    a = make_train_run(tmp_path, "a", dataset="symbols")
    b = make_train_run(tmp_path, "b", dataset="decoy_digits")
    with pytest.raises(UserError) as err:
        load_runs([a, b])
    msg = str(err.value)
    assert "different data sets" in msg and str(a) in msg and str(b) in msg
    assert "symbols" in msg and "decoy_digits" in msg


def test_retrain_run_data_set_read_through_selection(runs, tmp_path):
    train, retrain = runs
    other = make_train_run(tmp_path, "other", dataset="quickdraw")
    assert load_run(retrain).dataset == {"name": "symbols", "params": {"seed": 0}}
    with pytest.raises(UserError, match="different data sets"):
        load_runs([retrain, other])


def test_not_a_run_directory(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_visualisation_table_rows_and_images(runs, tmp_path):
    _, retrain = runs
    t = tables.visualisation_table(load_run(retrain), load_images=False)
    lines = t.latex.splitlines()
    assert lines[:3] == [r"\begin{tabular}{lrr}", r"\toprule", r"Name & train\_00000 & train\_00001 \\"]
    assert (r"Mask & \includegraphics[width=1.6cm]{visualisation_images/retrain_run_train_00000_mask.png} & "
            r"\includegraphics[width=1.6cm]{visualisation_images/retrain_run_train_00001_mask.png} \\") in lines
    assert r"Initial probs & 0.48 0.52 & 0.48 0.52 \\" in lines
    assert r"pasa probs & 0.99 0.01 & 0.99 0.01 \\" in lines
    assert r"Image & missing: image (not loaded) & missing: image (not loaded) \\" in lines
    assert "| Mask | ![](visualisation_images/retrain_run_train_00000_mask.png) |" in t.markdown
    out = tmp_path / "out"
    tables.save_tables([t], out)
    mask = np.asarray(Image.open(out / "visualisation_images/retrain_run_train_00000_mask.png"))
    assert mask.shape == (8, 8) and mask[0, 0] == 255 and mask[7, 7] == 0
    cam = np.asarray(Image.open(out / "visualisation_images/retrain_run_pasa_train_00001_final_cam.png"))
    assert cam.shape == (8, 8, 3) and int(cam.mean()) == 200
    doc = (out / "tables.tex").read_text()
    assert r"\usepackage{booktabs}" in doc and r"\resizebox{\linewidth}{!}{%" in doc
    assert r"\caption{Selected images of retrain\_run: initial and final CAMs and probabilities}" in doc


def test_visualisation_missing_cam_images_are_marked(tmp_path):
    train = make_train_run(tmp_path)
    retrain = make_retrain_run(tmp_path, train, with_images=False)
    t = tables.visualisation_table(load_run(retrain), load_images=False)
    row = t.frame.loc["pasa CAM"].tolist()
    assert row == ["missing: final CAM image of train_00000 for pasa", "missing: final CAM image of train_00001 for pasa"]


def test_empty_selection_is_an_error(tmp_path):
    train = make_train_run(tmp_path)
    retrain = make_retrain_run(tmp_path, train, items=0)
    with pytest.raises(UserError, match="is empty"):
        tables.visualisation_table(load_run(retrain), load_images=False)


def test_cli_writes_all_tables(runs, tmp_path, capsys):
    out = tmp_path / "tables"
    assert tables.main([str(runs[0]), str(runs[1]), "--out", str(out), "--no-images"]) == 0
    for name in ("accuracy", "per_class", "visualisation"):
        assert (out / f"{name}.tex").read_text().startswith(r"\begin{tabular}")
        assert (out / f"{name}.md").read_text().startswith("|")
    doc = (out / "tables.tex").read_text()
    assert doc.startswith(r"\documentclass{article}") and doc.rstrip().endswith(r"\end{document}")
    assert doc.count(r"\begin{table}") == 3


def test_retraining_layout_with_run_json_and_cam_records(tmp_path):
    """The retraining runner's real layout: run.json, <method>/cams.npz, per-method history."""
    from classification_models.cam import cam_overlay
    from plot_utils.results import save_cams

    train = make_train_run(tmp_path)
    retrain = make_retrain_run(tmp_path, train, with_images=False)
    cfg = json.loads((retrain / "config.json").read_text())
    cfg["selection"] = str(tmp_path / "retrain_run_selection" / "selection.json")
    write_json(retrain / "run.json", {"base": {"train_result": str(train / "result.json"),
                                               "dataset": {"name": "symbols", "params": {"seed": 0}},
                                               "report": {"train": json.loads((train / "metrics.json").read_text())["train"]["report"]}},
                                      "selected": ["train_00000", "train_00001"]})
    h = w = 8
    images = np.stack([np.full((h, w, 1), 40 + 10 * i, np.uint8) for i in range(2)])
    yy = np.arange(h)[:, None] * np.ones((1, w))
    for k, m in enumerate(("continued", "pasa")):
        rec = {"indices": np.array(["train_00000", "train_00001"]), "images": images,
               "masks": np.zeros((2, h, w), np.uint8), "labels": np.array([0, 1]),
               "cams_before": np.stack([yy, yy.T]), "cams_after": np.stack([yy.T, -yy]),
               "probs_before": np.full((2, 3), 1 / 3), "probs_after": np.full((2, 3), 1 / 3)}
        save_cams(retrain / m / "cams.npz", {"selected": rec})
    run = load_run(retrain)
    assert run.base.report["train"]["eps"]["precision"] == 0.76
    t = tables.visualisation_table(run, load_images=False)
    np.testing.assert_array_equal(t.images["visualisation_images/retrain_run_train_00001_image.png"], images[1])
    np.testing.assert_array_equal(t.images["visualisation_images/retrain_run_train_00000_initial_cam.png"],
                                  cam_overlay(images[0], yy))
    # an all-negative CAM (no evidence for the class) is drawn as the colour map's zero
    np.testing.assert_array_equal(t.images["visualisation_images/retrain_run_pasa_train_00001_final_cam.png"],
                                  cam_overlay(images[1], np.zeros((h, w))))


def test_cam_record_round_trip_and_bad_file(tmp_path):
    from plot_utils.results import load_cams, save_cams

    rec = {"indices": np.array(["a"]), "images": np.zeros((1, 4, 4, 3), np.uint8),
           "cams_before": np.ones((1, 4, 4), np.float32), "cams_after": np.zeros((1, 4, 4), np.float32)}
    back = load_cams(save_cams(tmp_path / "c.npz", {"selected": rec}))
    assert set(back) == {"selected"} and back["selected"]["indices"].tolist() == ["a"]
    np.testing.assert_array_equal(back["selected"]["cams_before"], rec["cams_before"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="CAM record '.*bad.npz' cannot be read"):
        load_cams(tmp_path / "bad.npz")


def test_visualisation_table_with_one_selected_image(tmp_path):
    """One selected image: a one-column table (pandas refuses a row assignment there)."""
    from tests.fixtures_tables import make_retrain_run, make_train_run

    train = make_train_run(tmp_path, "a")
    retrain = make_retrain_run(tmp_path, train, items=1)
    t = tables.visualisation_table(load_run(retrain), load_images=False)
    assert "| Mask | ![](visualisation_images/retrain_run_train_00000_mask.png) |" in t.markdown
    assert r"\begin{tabular}{lr}" in t.latex
