"""plot_utils.tables on a real training run and retraining run (``real_runs``): exact
LaTeX/Markdown rows, computed from the values the runs wrote."""
import json

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.run_files import load_run_info, load_summary
from plot_utils import tables, visualisation_table
from plot_utils.results import load_run, load_runs
from tests.fixtures_runs import copy_run, edit_json


def _f(v, digits=3):
    return f"{v:.{digits}f}"


def test_accuracy_table_exact_rows(real_runs):
    metrics = json.loads((real_runs.train / "metrics.json").read_text())
    summary = load_summary(real_runs.retrain)
    t = tables.accuracy_table(load_runs([real_runs.train, real_runs.retrain]))
    lines = t.latex.splitlines()
    base = [_f(metrics[s]["accuracy"]) for s in ("train", "val", "test")]
    rows = {m: [_f(getattr(s.accuracy, k)) for k in ("train", "val", "test")] for m, s in summary.methods.items()}
    assert lines[:8] == [r"\begin{tabular}{lrrr}", r"\toprule", r"Method & Train & Validation & Test \\", r"\midrule",
                         rf"Base & {' & '.join(base)} \\", rf"continued & {' & '.join(rows['continued'])} \\",
                         rf"pasa & {' & '.join(rows['pasa'])} \\", r"\bottomrule"]
    assert t.markdown.splitlines() == ["| Method | Train | Validation | Test |", "| --- | ---: | ---: | ---: |",
                                       f"| Base | {' | '.join(base)} |", f"| continued | {' | '.join(rows['continued'])} |",
                                       f"| pasa | {' | '.join(rows['pasa'])} |"]


def test_retrain_run_alone_takes_base_reports_from_run_json(real_runs):
    summary, info = load_summary(real_runs.retrain), load_run_info(real_runs.retrain)
    acc = tables.accuracy_table(load_runs([real_runs.retrain]))
    base = summary.base.accuracy
    assert rf"Base & {_f(base.train)} & {_f(base.val)} & {_f(base.test)} \\" in acc.latex.splitlines()
    pc = tables.per_class_table(load_runs([real_runs.retrain]))
    rep = info.base.report
    cells = [_f(rep[s]["circle"][k], 2) for s in ("train", "val", "test") for k in ("precision", "recall", "f1-score")]
    assert pc.markdown.splitlines()[2] == f"| Base | circle | {' | '.join(cells)} |"


def test_per_class_table_exact_rows(real_runs):
    metrics = json.loads((real_runs.train / "metrics.json").read_text())
    summary = load_summary(real_runs.retrain)
    t = tables.per_class_table(load_runs([real_runs.train, real_runs.retrain]))
    lines = t.latex.splitlines()
    assert r" &  & \multicolumn{3}{c}{Train} & \multicolumn{3}{c}{Validation} & \multicolumn{3}{c}{Test} \\" in lines

    def cells(report_of, cls):
        return [_f(report_of(s)[cls][k], 2) for s in ("train", "val", "test") for k in ("precision", "recall", "f1-score")]

    base = lambda s: metrics[s]["report"]  # noqa: E731
    assert rf"\multirow[t]{{2}}{{*}}{{Base}} & circle & {' & '.join(cells(base, 'circle'))} \\" in lines
    assert rf" & square & {' & '.join(cells(base, 'square'))} \\" in lines
    md = t.markdown.splitlines()
    assert md[0] == ("| Method | Class | Train P | Train R | Train F1 | Validation P | Validation R | Validation F1 "
                     "| Test P | Test R | Test F1 |")
    assert md[3] == f"|  | square | {' | '.join(cells(base, 'square'))} |"
    cont = summary.methods["continued"].report
    assert md[4] == f"| continued | circle | {' | '.join(cells(lambda s: cont[s], 'circle'))} |"


def test_missing_split_is_a_marked_cell(real_runs, tmp_path):
    train = copy_run(real_runs.train, tmp_path)
    # a data set without a validation split: the train result has no val metrics
    edit_json(train / "result.json", lambda r: r["metrics"].pop("val"))
    acc = json.loads((train / "result.json").read_text())["metrics"]
    t = tables.accuracy_table(load_runs([train]))
    row = rf"Base & {_f(acc['train']['accuracy'])} & missing: result.json metrics.val & {_f(acc['test']['accuracy'])} \\"
    assert row in t.latex.splitlines()
    pc = tables.per_class_table(load_runs([train]))
    assert "missing: result.json metrics.val" in pc.markdown.splitlines()[2]


def test_missing_method_value_names_the_key(real_runs, tmp_path):
    retrain = copy_run(real_runs.retrain, tmp_path)
    edit_json(retrain / "summary.json", lambda s: s["methods"]["pasa"]["accuracy"].pop("test"))
    t = tables.accuracy_table(load_runs([retrain]))
    assert t.frame.loc["pasa"].tolist()[2] == "missing: summary.json methods.pasa.accuracy.test"


def test_mixed_data_sets_are_refused_naming_both(real_runs, tmp_path):
    other = copy_run(real_runs.train, tmp_path)
    edit_json(other / "result.json", lambda r: r["dataset"].update(name="decoy_digits"))
    with pytest.raises(UserError) as err:
        load_runs([real_runs.train, other])
    msg = str(err.value)
    assert "different data sets" in msg and str(real_runs.train) in msg and str(other) in msg
    assert "image_folder" in msg and "decoy_digits" in msg
    with pytest.raises(UserError, match="different data sets"):
        load_runs([real_runs.retrain, other])


def test_retrain_run_data_set_and_train_result_from_run_json(real_runs):
    run, train = load_run(real_runs.retrain), load_run(real_runs.train)
    assert run.dataset == train.dataset and run.dataset["name"] == "image_folder"
    assert run.dataset_source == str(real_runs.retrain / "run.json")
    assert run.train_result_path.resolve() == (real_runs.train / "result.json").resolve()
    assert run.class_names == ["circle", "square"]


def test_not_a_run_directory(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_visualisation_table_rows_and_images(real_runs, tmp_path):
    from classification_models.cam import cam_overlay
    from plot_utils.results import load_cams

    run = load_run(real_runs.retrain)
    a, b = run.run_info.selected
    t = visualisation_table.visualisation_table(run, load_images=False)
    lines = t.latex.splitlines()
    esc = {i: i.replace("_", r"\_") for i in (a, b)}
    safe = {i: visualisation_table._safe(i) for i in (a, b)}
    assert lines[:3] == [r"\begin{tabular}{lrr}", r"\toprule", rf"Name & {esc[a]} & {esc[b]} \\"]
    assert (rf"Mask & \includegraphics[width=1.6cm]{{visualisation_images/retrain_{safe[a]}_mask.png}} & "
            rf"\includegraphics[width=1.6cm]{{visualisation_images/retrain_{safe[b]}_mask.png}} \\") in lines
    probs = run.summary.methods["pasa"].selected_probabilities
    initial = " & ".join(" ".join(f"{p:.2f}" for p in probs[i].before) for i in (a, b))
    final = " & ".join(" ".join(f"{p:.2f}" for p in probs[i].after) for i in (a, b))
    assert rf"Initial probs & {initial} \\" in lines and rf"pasa probs & {final} \\" in lines
    # image and CAM cells: the run's cams.npz rendered (the data set is not loaded here)
    rec = load_cams(real_runs.retrain / "pasa" / "cams.npz")["selected"]
    assert rec["indices"].tolist() == [a, b]
    np.testing.assert_array_equal(t.images[f"visualisation_images/retrain_{safe[b]}_image.png"], rec["images"][1])
    np.testing.assert_array_equal(t.images[f"visualisation_images/retrain_pasa_{safe[b]}_final_cam.png"],
                                  cam_overlay(rec["images"][1], rec["cams_after"][1]))
    np.testing.assert_array_equal(t.images[f"visualisation_images/retrain_{safe[a]}_initial_cam.png"],
                                  cam_overlay(rec["images"][0], rec["cams_before"][0]))
    out = tmp_path / "out"
    tables.save_tables([t], out)
    mask = np.asarray(Image.open(out / f"visualisation_images/retrain_{safe[a]}_mask.png"))
    expected = np.asarray(Image.open(run.selection_path.parent / f"masks/{a}.png"))
    np.testing.assert_array_equal(mask, expected)
    doc = (out / "tables.tex").read_text()
    assert r"\usepackage{booktabs}" in doc and r"\resizebox{\linewidth}{!}{%" in doc
    assert r"\caption{Selected images of retrain: initial and final CAMs and probabilities}" in doc


def test_visualisation_missing_cam_record_is_marked(real_runs, tmp_path):
    retrain = copy_run(real_runs.retrain, tmp_path)
    (retrain / "pasa" / "cams.npz").unlink()
    run = load_run(retrain)
    t = visualisation_table.visualisation_table(run, load_images=False)
    assert t.frame.loc["pasa CAM"].tolist() == [f"missing: final CAM image of {i} for pasa" for i in run.run_info.selected]


def _with_selection(real_runs, tmp_path, keep: int):
    """A copy of the retraining run whose selection file keeps the first ``keep`` items."""
    import shutil

    retrain = copy_run(real_runs.retrain, tmp_path)
    sel_dir = shutil.copytree(real_runs.selection.parent, tmp_path / "selection")
    edit_json(sel_dir / "selection.json", lambda s: s.update(items=s["items"][:keep]))
    edit_json(retrain / "config.json", lambda c: c.update(selection=str(sel_dir / "selection.json")))
    return retrain


def test_empty_selection_is_an_error(real_runs, tmp_path):
    with pytest.raises(UserError, match="is empty"):
        visualisation_table.visualisation_table(load_run(_with_selection(real_runs, tmp_path, 0)), load_images=False)


def test_visualisation_table_with_one_selected_image(real_runs, tmp_path):
    """One selected image: a one-column table (pandas refuses a row assignment there)."""
    run = load_run(_with_selection(real_runs, tmp_path, 1))
    t = visualisation_table.visualisation_table(run, load_images=False)
    first = visualisation_table._safe(run.run_info.selected[0])
    assert f"| Mask | ![](visualisation_images/retrain_{first}_mask.png) |" in t.markdown
    assert r"\begin{tabular}{lr}" in t.latex


def test_cli_writes_all_tables(real_runs, tmp_path):
    out = tmp_path / "tables"
    assert tables.main([str(real_runs.train), str(real_runs.retrain), "--out", str(out), "--no-images"]) == 0
    for name in ("accuracy", "per_class", "visualisation"):
        assert (out / f"{name}.tex").read_text().startswith(r"\begin{tabular}")
        assert (out / f"{name}.md").read_text().startswith("|")
    doc = (out / "tables.tex").read_text()
    assert doc.startswith(r"\documentclass{article}") and doc.rstrip().endswith(r"\end{document}")
    assert doc.count(r"\begin{table}") == 3


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
