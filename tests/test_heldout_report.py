"""Leave-one-family-out choice and the held-out report on hand-built records."""
import json

import numpy as np
import pytest

from benchmarks import heldout_report as hr


def along(a100, a300, wg300=None):
    return [{"iteration": 0, "test": 0.5}, {"iteration": 100, "test": a100},
            {"iteration": 300, "test": a300, "worst_group": wg300}]


def record(family, swap, levers, *, control_val_swap=0.5):
    """Base 0.5, oracle 1.0: a recovered gap of x at accuracy 0.5 + x / 2."""
    methods = {
        "continued": {"role": "baseline", "test": 0.6, "val_swap": 0.4, "step_seconds": 0.10,
                      "along": along(0.55, 0.6)},
        "swap": {"role": "feedback", "test": swap[1], "val_swap": 0.9, "step_seconds": 0.12,
                 "along": along(*swap, wg300=0.8), "cue": {"before": {"flip_rate": 0.5}, "after": {"flip_rate": 0.05}}},
        "swap_random_masks": {"role": "control", "test": 0.45, "val_swap": control_val_swap, "step_seconds": 0.12,
                              "along": along(0.5, 0.45)},
    }
    return {"set": f"{family}-c0.9", "family": family, "regime": "c0.9", "seed": 0, "base_test": 0.5,
            "oracle_test": 1.0, "base_worst_group": 0.1, "oracle_worst_group": 0.85, "methods": methods,
            "levers": {"default": methods["swap"]["along"], **{k: along(*v, wg300=0.9) for k, v in levers.items()}}}


def test_a_family_s_lever_is_chosen_on_the_other_families_only():
    # lever "lr2e-3" is best on a and b, "widen" only on c (where it is far ahead)
    recs = [record("a", (0.7, 0.9), {"lr2e-3": (0.9, 0.95), "widen": (0.6, 0.8)}),
            record("b", (0.7, 0.9), {"lr2e-3": (0.9, 0.95), "widen": (0.6, 0.8)}),
            record("c", (0.7, 0.9), {"lr2e-3": (0.6, 0.7), "widen": (1.0, 1.0)})]
    scores = hr.lever_scores(recs, 100)
    assert scores["lr2e-3"] == pytest.approx({"a": 0.8, "b": 0.8, "c": 0.2})
    assert "lr2e-3-widen" not in scores  # never run: not a candidate
    assert hr.choose(scores, leave_out="c") == "lr2e-3"  # chosen without c: reported on c at 20 %
    assert hr.choose(scores, leave_out="a") == "widen"  # b and c: (0.2 + 1.0) / 2 > (0.8 + 0.2) / 2
    rows = {r[0]: r for r in hr.family_rows(recs, held_out=True)}
    assert rows["c"][3:5] == ["lr2e-3", "20 % ± 0"] and rows["a"][3:5] == ["widen", "20 % ± 0"]
    insample = {r[0]: r for r in hr.family_rows(recs, held_out=False)}
    # in sample a's own result counts: the best lever over all three families, 80 % on a
    assert insample["a"][3:5] == ["lr2e-3", "80 % ± 0"] and insample["c"][3:5] == ["lr2e-3", "20 % ± 0"]
    lines = hr.goal_lines(recs)
    assert lines[1].startswith("- ≥ 60 % of the gap within 100 iterations on every held-out family: worst a 20 %")
    assert "the random-masks control above the real masks on val_swap: 0 of 3 runs." in "\n".join(lines)
    assert any(line.startswith("- cue flips fall ≥ 80 % (`swap`, 300 iterations): lowest 90 %") for line in lines)
    assert any(line.startswith("- step ≤ 1.3 × continued: `swap` 1.20 ×") and line.endswith("met.") for line in lines)


def test_rank_correlation_of_val_swap_with_test():
    methods = {"a": {"val_swap": 0.2, "test": 0.5}, "b": {"val_swap": 0.5, "test": 0.7},
               "c": {"val_swap": 0.9, "test": 0.6}, "d": {"val_swap": None, "test": 0.1}}
    assert hr.rank_correlation(methods) == pytest.approx(0.5)
    assert hr.rank_correlation({k: methods[k] for k in "ab"}) is None
    fooled = record("a", (0.7, 0.9), {}, control_val_swap=0.95)
    assert "1 of 1 runs (a-c0.9 seed 0)" in "\n".join(hr.goal_lines([fooled]))
    assert np.isclose(hr.recovered(fooled, fooled["levers"]["default"], 300), 0.8)


def test_oracle_curve_counts_images_seen_from_its_history(tmp_path):
    folder = tmp_path / "oracle"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"train": {"batch_size": 64}}), encoding="utf-8")
    rows = [{"epoch": 1, "steps": 25, "val_accuracy": 0.25}, {"epoch": 2, "steps": 25, "val_accuracy": 0.5},
            {"epoch": 3, "steps": 25, "val_accuracy": None}]
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert hr.oracle_curve(folder) == [(1600, 0.25), (3200, 0.5)]
    assert hr.oracle_curve(tmp_path / "missing") is None
    assert hr.IMAGES_PER_ITERATION == 55
