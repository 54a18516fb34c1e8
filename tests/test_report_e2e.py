"""From a tiny real retraining run (the runner's own output) to tables, figures and the
HTML page of the report."""
import numpy as np

from plot_utils import tables
from plot_utils.results import load_run
from plot_utils.report_page import to_html


def test_real_run_to_tables_and_html(real_runs, tmp_path):
    run = load_run(real_runs.retrain)
    assert run.kind == "retrain" and [m.label for m in run.methods] == ["continued", "pasa"]
    built = tables.build_tables([run], load_images=False)
    vis = built[-1]
    # the visualisation table's CAM cells come from the run's cams.npz, not from PNG cutting
    rel = f"visualisation_images/retrain_pasa_{tables._safe(run.run_info.selected[0])}_final_cam.png"
    assert rel in vis.images and vis.images[rel].shape == (24, 24, 3)
    tables.save_tables(built, tmp_path / "report" / "tables")
    assert (tmp_path / "report" / "tables" / rel).exists()
    page = to_html("# Report\n\n" + "\n\n".join(t.markdown for t in built), title="Report")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == len(built)
    assert f'<img alt="" src="{rel}"' in page
    for m in ("continued", "pasa"):
        for name in ("cams_selected.png", "cams_iterations.png", "cams.npz"):
            assert (real_runs.retrain / m / name).stat().st_size > 0
    assert np.isfinite(run.methods[1].accuracy["test"])
