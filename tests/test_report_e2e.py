"""From a tiny real retraining run (the runner's own output) to tables, figures and the
HTML page of the report; the report command (``exp_scripts.thesis_report``) on the same
runs: the thesis grids it writes and the page that embeds them."""
import base64
import json

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from plot_utils import tables, visualisation_table
from plot_utils.report_page import to_html
from plot_utils.results import load_run


def test_real_run_to_tables_and_html(real_runs, tmp_path):
    run = load_run(real_runs.retrain)
    assert run.kind == "retrain" and [m.label for m in run.methods] == ["continued", "pasa"]
    built = tables.build_tables([run], load_images=False)
    vis = built[-1]
    # the visualisation table's CAM cells come from the run's cams.npz, not from PNG cutting
    rel = f"visualisation_images/retrain_pasa_{visualisation_table._safe(run.run_info.selected[0])}_final_cam.png"
    assert rel in vis.images and vis.images[rel].shape == (24, 24, 3)
    tables.save_tables(built, tmp_path / "report" / "tables")
    assert (tmp_path / "report" / "tables" / rel).exists()
    page = to_html("# Report\n\n" + "\n\n".join(t.markdown for t in built), title="Report")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == len(built)
    assert f'<img alt="" src="{rel}"' in page
    # with the report folder given, the page carries its images (a missing one stays a link)
    alone = to_html(f"![x]({rel})\n\n![y](gone.png)", title="R", base_dir=tmp_path / "report" / "tables")
    encoded = base64.b64encode((tmp_path / "report" / "tables" / rel).read_bytes()).decode()
    assert f'src="data:image/png;base64,{encoded}"' in alone and 'src="gone.png"' in alone
    for m in ("continued", "pasa"):
        for name in ("cams_selected.png", "cams_iterations.png", "cams.npz"):
            assert (real_runs.retrain / m / name).stat().st_size > 0
    assert np.isfinite(run.methods[1].accuracy["test"])


@pytest.fixture(scope="module")
def report(real_runs, tmp_path_factory):
    """``exp_scripts.thesis_report --smoke`` on the shared tiny runs, with a second example
    data set (a bare spec of the same image folder), run from another working directory with
    ``$VF_RESULTS_ROOT`` set and no ``--out``: the report (its chapter-7 analyses of
    ``exp_scripts.report_analysis`` too) goes to ``<results>/thesis_report_smoke``, nothing
    to the working directory."""
    from classification_models.train_result import load_train_result
    from exp_scripts import thesis_report

    tmp = tmp_path_factory.mktemp("report")
    tr = load_train_result(real_runs.train / "result.json")
    other = tmp / "other_set.json"
    other.write_text(json.dumps(tr.dataset_spec))
    work, out = tmp / "wd", tmp / "res" / "thesis_report_smoke"
    work.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("VF_RESULTS_ROOT", str(tmp / "res"))
        assert thesis_report.main(["--train-run", str(real_runs.train), "--retrain-run", str(real_runs.retrain),
                                   "--data-root", str(real_runs.data_root), "--smoke",
                                   "--example-datasets", str(other)]) == 0
    assert list(work.iterdir()) == [] and sorted(p.name for p in (tmp / "res").iterdir()) == ["thesis_report_smoke"]
    assert (out / "analysis" / "ranking" / "ranking.json").is_file()
    return out, tr


def test_report_writes_the_thesis_grids_and_links_them(report):
    out, tr = report
    n_classes = len(tr.class_names)
    # Table 3.7: 3 of the 4 validation images per class, grouped by class, CAMs at image size
    cams = np.load(out / "figures" / "base_cams.npz")
    assert cams["labels"].tolist() == [c for c in range(n_classes) for _ in range(3)]
    assert cams["cams_true"].shape == cams["cams_pred"].shape == (3 * n_classes, 24, 24)
    assert np.allclose(cams["probs"].sum(axis=1), 1.0, atol=1e-5)
    # Tables 6.x: the run's data set and the extra one, every class a row of 6 of its 10 training images
    for name in ("examples", "examples_other_set"):
        grid = json.loads((out / "figures" / f"{name}.json").read_text())
        assert grid["class_names"] == tr.class_names
        assert [len(row) for row in grid["indices"]] == [6] * n_classes
        assert all(i.startswith("train/") for row in grid["indices"] for i in row)
    assert json.loads((out / "figures" / "examples_other_set.json").read_text())["config"].endswith("other_set.json")
    # Fig 7.10: every one of the K = 8 features under every criterion
    crit = json.loads((out / "analysis" / "feature_change" / "feature_criteria.json").read_text())
    assert sorted(crit["importance_rank"]) == list(range(8)) and len(crit["change"]) == 8
    assert sum(v for c in crit["counts"].values() for v in c.values()) <= 8
    new = ["figures/base_cams.png", "figures/examples.png", "figures/examples_other_set.png",
           "analysis/feature_change/feature_criteria.png"]
    md, page = (out / "index.md").read_text(), (out / "index.html").read_text()
    for rel in new:
        img = np.asarray(Image.open(out / rel).convert("L"), float)
        assert min(img.shape) >= 200 and (img < 250).mean() > 0.01, rel
        assert f"]({rel})" in md and f'src="{rel}"' not in page  # embedded: the page opens anywhere
        assert f'src="data:image/png;base64,{base64.b64encode((out / rel).read_bytes()).decode()}"' in page
    assert "thesis Table 3.7" in md and "thesis Tables 6.1 / 6.5 / 6.9" in md and "thesis Fig 7.10" in md
    # the run's tables and each method's CAM figures, and the steps as their stand-alone commands
    assert md.count("[LaTeX](tables/") == 3 and "/pasa/cams_selected.png)" in md
    assert "python -m vis_exp.feature_change" in md
    assert "Fig 7.4" in md.split("## Not produced in this report")[1]  # no expert labels given


def test_without_a_retrained_model_table_7_3_and_fig_7_10_are_listed_as_not_done(tmp_path):
    from exp_scripts import report_analysis
    from plot_utils.report_page import Page

    assert report_analysis.after_model_of(tmp_path, None) is None
    assert report_analysis.after_model_of(tmp_path, "m.keras") == "m.keras"
    (tmp_path / "pas").mkdir()
    (tmp_path / "pas" / "model.keras").write_bytes(b"")
    assert report_analysis.after_model_of(tmp_path, None) == str(tmp_path / "pas" / "model.keras")
    page = Page(out=tmp_path, final=tmp_path, smoke=True, data_root=None)
    assert report_analysis.feature_change_sections(page, tmp_path / "result.json", None, None, None, after_model=None,
                                                   ranking={"order": [0], "cut": 1}, in_masks=[]) == []
    assert len(page.not_done) == 1 and "Figs 7.6-7.10" in page.not_done[0]
    assert "--after-model MODEL.keras" in page.not_done[0] and not page.steps


def test_example_dataset_configs(tmp_path):
    from exp_scripts.thesis_report import dataset_spec_from_file

    assert dataset_spec_from_file("config_files/train_files/symbols.json") == {
        "name": "symbols", "params": {"train_correlation": 0.9}}
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"name": "decoy_digits"}))
    assert dataset_spec_from_file(bare) == {"name": "decoy_digits", "params": {}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nme": "symbols"}))
    with pytest.raises(UserError, match="bad.json: data set spec: unknown key 'nme'"):
        dataset_spec_from_file(bad)
