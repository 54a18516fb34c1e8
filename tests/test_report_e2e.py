"""From a tiny real retraining run (the runner's own output) to tables, figures and the
HTML page of the report."""
import numpy as np

from common.config import from_dict
from exp_scripts.retrain.config import RetrainConfig
from exp_scripts.retrain.data import masked_set_from_items
from exp_scripts.retrain.runner import run_retraining
from plot_utils import tables
from plot_utils.results import load_run
from plot_utils.thesis_report import to_html
from tests.fixtures_retrain import make_classifier, make_dataset, selection_items


def test_real_run_to_tables_and_html(tmp_path):
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 2)
    sel = masked_set_from_items(ds, items, masks)
    cfg = from_dict(RetrainConfig, {"name": "run", "selection": "s.json", "iterations": 2, "eval_every": 1,
                                    "batch": {"random": 6, "selected": 2},
                                    "methods": [{"name": "continued"}, {"name": "pas"}]}, source="cfg")
    run_retraining(cfg, base=clf, dataset=ds, selected=sel, heldout=masked_set_from_items(ds, [], []),
                   run_dir=tmp_path / "run", quiet=True, out=lambda s: None)
    run = load_run(tmp_path / "run")
    assert run.kind == "retrain" and [m.label for m in run.methods] == ["continued", "pas"]
    built = tables.build_tables([run], load_images=False)
    vis = built[-1]
    # the visualisation table's CAM cells come from the run's cams.npz, not from PNG cutting
    rel = f"visualisation_images/run_pas_{sel.indices[0]}_final_cam.png"
    assert rel in vis.images and vis.images[rel].shape == (16, 16, 3)
    tables.save_tables(built, tmp_path / "report" / "tables")
    assert (tmp_path / "report" / "tables" / rel).exists()
    page = to_html("# Report\n\n" + "\n\n".join(t.markdown for t in built), title="Report")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == len(built)
    assert f'<img alt="" src="{rel}"' in page
    for m in ("continued", "pas"):
        for name in ("cams_selected.png", "cams_iterations.png", "cams.npz"):
            assert (tmp_path / "run" / m / name).stat().st_size > 0
    assert np.isfinite(run.methods[1].accuracy["test"])
