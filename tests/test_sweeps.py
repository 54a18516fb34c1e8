"""Sweeps: candidate lists (thesis §5.1.1), a tiny sweep run's table/plot/JSON outputs."""
import json

import pytest

from classification_models.losses import thesis_pas_lambda
from common.config import from_dict
from common.errors import UserError
from retraining.config import RetrainConfig
from retraining.data import masked_set_from_items
from retraining.methods.pas import CALIBRATED_SCALE
from retraining.sweeps import (best_row, lambda_candidates, mask_counts, pasa_grid, plan, sweep,
                                        sweep_result_lines, table_csv, table_markdown)
from tests.fixtures_retrain import make_classifier, make_dataset, selection_items


def test_lambda_candidates_are_the_thesis_nine():
    base = CALIBRATED_SCALE / (5 * 4 * 4 * 8)
    got = lambda_candidates(h=4, w=4, k=8)
    want = sorted([base] + [base * 2 ** i for i in (1, 2, 3, 4)] + [base / 5 ** i for i in (1, 2, 3, 4)])
    assert got == pytest.approx(want, rel=1e-12)
    assert len(got) == 9 and got[0] == pytest.approx(base / 625) and got[-1] == pytest.approx(base * 16)
    assert lambda_candidates(h=14, w=14, k=64, scale=1.0)[4] == pytest.approx(thesis_pas_lambda(h=14, w=14, k=64))


def test_mask_counts_and_pasa_grid():
    assert mask_counts(18) == [2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert mask_counts(20) == [2, 4, 7, 9, 11, 13, 16, 18, 20]
    assert mask_counts(3) == [1, 2, 3]
    with pytest.raises(UserError, match="non-empty"):
        mask_counts(0)
    g = pasa_grid()
    assert len(g) == 20 and g[0] == (0.2, 0.3) and g[-1] == (5.0, 2.0) and (0.4, 0.7) in g


def test_plan_labels_and_points():
    ds = make_dataset()
    items, masks = selection_items(ds, 4)
    sel = masked_set_from_items(ds, items, masks)
    (specs, s, keys), = plan("lambda", grid=(4, 4, 8), selected=sel, n_train=48)
    assert [sp.params["lam"] for sp in specs] == pytest.approx(lambda_candidates(h=4, w=4, k=8))
    assert all(sp.params["normalize"] == "masked" for sp in specs)
    assert list(keys)[4] == f"pas_{CALIBRATED_SCALE:g}x"
    runs = plan("masks", grid=(4, 4, 8), selected=sel, n_train=48)
    assert [len(r[1]) for r in runs] == [1, 2, 3, 4]
    assert list(runs[1][2].values())[0] == {"n_masks": 2, "share_of_train": 2 / 48}
    with pytest.raises(UserError, match="valid: lambda, masks, pasa"):
        plan("bogus", grid=(4, 4, 8), selected=sel, n_train=48)


def test_tables_and_best():
    rows = [{"lambda": 0.1, "val_accuracy": 0.5, "test_accuracy": 0.4},
            {"lambda": 0.2, "val_accuracy": 0.7, "test_accuracy": None},
            {"lambda": 0.4, "val_accuracy": 0.7, "test_accuracy": 0.9}]
    assert best_row(rows)["lambda"] == 0.2  # first on ties
    md = table_markdown(rows).splitlines()
    assert md[0] == "| lambda | val_accuracy | test_accuracy |" and md[3] == "| 0.2 | 0.7 | – |"
    assert table_csv(rows).splitlines() == ["lambda,val_accuracy,test_accuracy", "0.1,0.5,0.4", "0.2,0.7,", "0.4,0.7,0.9"]


def test_tiny_lambda_sweep_writes_one_row_per_candidate(tmp_path):
    # one run covers the writers; the masks/pasa plans are checked above without training
    kind, n_rows = "lambda", 9
    from plot_utils.figures import sweep_points

    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    sel = masked_set_from_items(ds, items, masks)
    hitems, hmasks = selection_items(ds, 2, offset=5)
    held = masked_set_from_items(ds, hitems, hmasks)
    cfg = from_dict(RetrainConfig, {"name": "t", "selection": "s.json", "methods": [{"name": "continued"}],
                                    "iterations": 1, "eval_every": 1, "batch": {"random": 4, "selected": 2},
                                    "overlays": False},
                    source="cfg")
    payload = sweep(kind, cfg, base=clf, dataset=ds, selected=sel, heldout=held, root=tmp_path / "sw")
    printed = sweep_result_lines(kind, payload, tmp_path / "sw")
    root = tmp_path / "sw"
    assert len(payload["points"]) == n_rows
    md = (root / f"sweep_{kind}.md").read_text().strip().splitlines()
    assert len(md) == 2 + n_rows
    csv_lines = (root / f"sweep_{kind}.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 1 + n_rows
    png = (root / f"sweep_{kind}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    data = json.loads((root / f"sweep_{kind}.json").read_text())
    xs, ys = sweep_points(data, "lambda")
    assert len(xs) == n_rows and all(0 <= y <= 1 for y in ys)
    assert xs.tolist() == pytest.approx(lambda_candidates(h=4, w=4, k=8))
    assert [p["x_thesis"] for p in data["points"]] == pytest.approx(
        [CALIBRATED_SCALE * f for f in (1 / 625, 1 / 125, 1 / 25, 1 / 5, 1, 2, 4, 8, 16)])
    assert data["best"]["val_accuracy"] == max(ys)
    assert data["base"]["val"] is not None and printed[-1] == str(root / f"sweep_{kind}.json")
    assert printed[0].strip() == (root / f"sweep_{kind}.md").read_text().strip()
    assert printed[1] == f"best on {data['chosen_on']}: {payload['best']}"
