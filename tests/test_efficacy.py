"""Efficacy report maths and rendering on hand-made records (no training)."""
import math

import pytest

from benchmarks.efficacy import DEFAULTS, parse_batch, variant_tag, write_report
from benchmarks.efficacy_report import (NOTES_BEGIN, NOTES_END, aggregate, dataset_section, fmt_ms, keep_notes,
                                         mean_std, recovered_share)
from common.errors import UserError


def _rec(seed, base, clean, tests, steps, energy=(0.5, 0.1)):
    e = {"selected": {"before": energy[0], "after": energy[1]}, "heldout": {"before": energy[0], "after": energy[1] * 2}}
    return {"dataset": "d", "seed": seed, "tag": "main", "base_test": base, "clean_test": clean, "clean_own_test": 0.99,
            "methods": {m: {"test": t, "val": 0.9, "energy": e, "step_seconds": steps[m]} for m, t in tests.items()},
            "n_train": 1000, "n_masked": 20, "n_masked_misclassified": 0, "n_heldout": 20, "share_masked": 0.02,
            "iterations": 200, "batch": {"random": 50, "selected": 5}, "lr": 1e-3,
            "mask_resize": {"mode": "area"}, "grid": [12, 12, 64]}


def test_mean_std_and_recovered_share():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([None, float("nan")]) is None
    assert recovered_share(method=0.95, base=0.85, clean=0.95) == pytest.approx(1.0)
    assert recovered_share(method=0.88, base=0.80, clean=0.90) == pytest.approx(0.8)
    assert recovered_share(method=0.78, base=0.80, clean=0.90) == pytest.approx(-0.2)
    assert recovered_share(method=0.9, base=0.9, clean=0.9) is None


def test_aggregate_on_hand_made_numbers():
    steps = {"continued": 0.10, "pasa": 0.105}
    recs = [_rec(0, 0.80, 0.90, {"continued": 0.81, "pasa": 0.88}, steps),
            _rec(1, 0.84, 0.94, {"continued": 0.85, "pasa": 0.90}, {"continued": 0.2, "pasa": 0.22})]
    a = aggregate(recs, ["continued", "pasa", "rrr"])
    assert a["seeds"] == [0, 1]
    assert a["base"] == pytest.approx((0.82, math.sqrt(0.0008)))
    assert a["clean"][0] == pytest.approx(0.92)
    p = a["methods"]["pasa"]
    # recovered: 0.8 and 0.6 -> mean 0.7, sample std sqrt(0.02)
    assert p["recovered"] == pytest.approx((0.7, math.sqrt(0.02)))
    assert p["test"][0] == pytest.approx(0.89)
    assert p["step_ratio"] == pytest.approx((1.075, math.sqrt(((1.05 - 1.075) ** 2 + (1.1 - 1.075) ** 2))))
    assert p["energy_selected"][1] == pytest.approx((0.1, 0.0)) and p["energy_heldout"][1][0] == pytest.approx(0.2)
    assert a["methods"]["continued"]["recovered"][0] == pytest.approx(0.1)
    assert p["vs_continued"] == pytest.approx((0.06, math.sqrt(0.0002)))
    assert "rrr" not in a["methods"]


def test_section_and_goal_line():
    recs = [_rec(0, 0.80, 0.90, {"continued": 0.81, "pasa": 0.89}, {"continued": 0.1, "pasa": 0.1})]
    text = dataset_section("d", recs, ["continued", "pasa", "rrr"], pending_seeds=[1])
    assert "| pasa | 0.890 ± 0.000 | 90 % ± 0 | 0.080 ± 0.000 |" in text
    assert "| rrr | pending |" in text and "pending: 1" in text and "**2.0 %**" in text
    assert "**90 % — met**" in text
    assert "**pending**" in dataset_section("s", [], ["pasa"], pending_seeds=[0, 1])
    assert fmt_ms(None) == "–" and fmt_ms((0.123456, 0.01)) == "0.123 ± 0.010"


def test_notes_kept_and_report_written(tmp_path):
    out = tmp_path / "B.md"
    out.write_text(f"old\n{NOTES_BEGIN}\nmy finding\n{NOTES_END}\nold tail")
    import json

    (tmp_path / "r" / "d" / "seed0").mkdir(parents=True)
    rec = _rec(0, 0.80, 0.90, {"continued": 0.81, "pasa": 0.88}, {"continued": 0.1, "pasa": 0.1})
    (tmp_path / "r" / "d" / "seed0" / "record_main.json").write_text(json.dumps(rec))
    (tmp_path / "r" / "d" / "seed0" / "record_iterations300.json").write_text(json.dumps({**rec, "tag": "iterations300"}))
    text = write_report(out, root=tmp_path / "r", datasets=["d", "sym"], seeds=[0, 1],
                        methods=["continued", "pasa"], command="cmd")
    assert out.read_text() == text
    assert f"{NOTES_BEGIN}\nmy finding\n{NOTES_END}" in text and "old tail" not in text
    assert "### sym" in text and "| d | iterations300 | 0 |" in text and "80 % ± 0" in text
    assert keep_notes(None) == f"{NOTES_BEGIN}\n{NOTES_END}"


def test_options():
    assert parse_batch("50+5") == (50, 5)
    with pytest.raises(UserError, match="50\\+5"):
        parse_batch("55")
    assert variant_tag(dict(DEFAULTS)) == "main"
    assert variant_tag({**DEFAULTS, "iterations": 300, "mask_resize": "dilate"}) == "iterations300-mask_resizedilate"
