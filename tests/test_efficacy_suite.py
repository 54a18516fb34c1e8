"""The suite efficacy pipeline end to end on a tiny set (generic user paths only), and
the report's aggregation on records it wrote."""
import json

import pytest

from benchmarks import efficacy_suite, suite_report


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suite")
    out = tmp / "BENCH.md"
    out.write_text("# Benchmarks\n\nkept text\n")
    argv = ["--smoke", "--sets", "patch-digits-gray-c1.0", "--seeds", "0", "--root", str(tmp / "runs"),
            "--data", str(tmp / "data"), "--data-root", str(tmp / "cache"), "--out", str(out), "--quiet"]
    assert efficacy_suite.main(argv) == 0
    return tmp, out


def test_record_has_every_method_with_reliance(smoke_run):
    tmp, _ = smoke_run
    rec = json.loads((tmp / "runs" / "patch-digits-gray-c1.0-smoke" / "seed0" / "record_main.json").read_text())
    assert set(rec["methods"]) == set(efficacy_suite.SMOKE_METHODS)
    assert set(efficacy_suite.SMOKE_METHODS) <= {m.get("label", m["name"]) for m in efficacy_suite.METHODS}
    assert rec["n_masked"] == 1 and rec["n_train"] == 160  # 1 % of 160
    assert 0.0 <= rec["base_test"] <= 1.0 and 0.0 <= rec["oracle_test"] <= 1.0
    assert rec["methods"]["continued"]["role"] == "baseline" and rec["methods"]["swap"]["role"] == "feedback"
    assert rec["methods"]["swap_random_masks"]["role"] == "control"
    cue = rec["methods"]["swap"]["cue"]
    assert cue["before"]["n"] == 48 and 0.0 <= cue["after"]["flip_rate"] <= 1.0
    assert rec["propagated"]["quality"] is not None  # the set has ground-truth masks to score against


def test_report_section_replaces_only_its_block(smoke_run, tmp_path):
    tmp, out = smoke_run
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n")
    assert suite_report.BEGIN in text and "#### patch-digits-gray-c1.0-smoke" in text and "| swap_pasa | feedback |" in text
    suite_report.write(out, root=tmp / "runs", command="again")
    again = out.read_text()
    assert again.count(suite_report.BEGIN) == 1 and "kept text" in again and "`again`" in again


def test_per_seed_derivations():
    rec = {"base_test": 0.5, "oracle_test": 0.9, "methods": {
        "continued": {"test": 0.6, "role": "baseline", "step_seconds": 0.1, "cue": None},
        "misclassified": {"test": 0.7, "role": "baseline", "step_seconds": 0.1, "cue": None},
        "swap": {"test": 0.8, "role": "feedback", "step_seconds": 0.12,
                 "cue": {"before": {"flip_rate": 0.6}, "after": {"flip_rate": 0.1}}}}}
    d = suite_report.per_seed(rec)["swap"]
    assert d["recovered"] == pytest.approx(0.75) and d["delta"] == pytest.approx(0.1)
    assert d["closes"] == pytest.approx(0.5) and d["step_ratio"] == pytest.approx(1.2)
    assert d["flip_before"] == 0.6 and d["flip_after"] == 0.1


def test_unknown_set_is_one_line(capsys):
    from common.cli import run_main

    code = run_main(efficacy_suite.main, ["--sets", "nope", "--report-only"])
    assert code == 2 and "--sets: unknown set 'nope'" in capsys.readouterr().err


def test_a_propagation_override_must_be_key_value(capsys):
    from common.cli import run_main

    code = run_main(efficacy_suite.main, ["--propagation", "pixel_threshold", "--report-only"])
    assert code == 2 and "--propagation: expected KEY=VALUE, got 'pixel_threshold'" in capsys.readouterr().err


def test_investigations_table_lists_variants_beside_the_main_run(tmp_path):
    from common.io import atomic_write_json

    def rec(tag, first, tv):
        start = {"first": first, "min": 0.4, "last": 0.95, "total_variation": tv}
        return {"set": "s1", "tag": tag, "seed": 0, "methods": {
            "continued": {"test": 0.7, "cue": {"after": {"flip_rate": 0.5}}, "start": start},
            "pasa": {"test": 0.9, "cue": {"after": {"flip_rate": 0.1}}, "start": start}}}

    atomic_write_json(tmp_path / "s1" / "seed0" / "record_main.json", rec("main", 0.99, 3.5))
    atomic_write_json(tmp_path / "s1" / "seed0" / "record_warmup20.json", rec("warmup20", 0.9, 1.2))
    table = suite_report.investigations(tmp_path)
    rows = [ln for ln in table.splitlines() if ln.startswith("| s1 |")]
    assert len(rows) == 4
    assert rows[0].startswith("| s1 | Adam 1e-3, fresh (main) | continued | 0.700 ± 0.000 | 0.50 ± 0.00 | 0.99 / 0.40 / 0.95 | 3.50 |")
    assert rows[3].startswith("| s1 | warmup20 | pasa | 0.900 ± 0.000 | 0.10 ± 0.00 | 0.90 / 0.40 / 0.95 | 1.20 |")
    assert suite_report.investigations(tmp_path / "none") is None


def test_hard_case_rows_and_options(tmp_path, capsys):
    from common.cli import run_main
    from common.io import atomic_write_json

    name = "text-glyphs-rgb-c1.0"
    for seed, after in ((0, 0.75), (1, 0.65)):
        atomic_write_json(tmp_path / name / f"seed{seed}" / "record_hard300.json", {
            "set": name, "tag": "hard300", "seed": seed, "iterations": 300, "base_test": 0.25, "oracle_test": 0.95,
            "methods": {"continued": {"test": 0.25, "role": "baseline", "step_seconds": 0.1, "cue": None},
                        "swap": {"test": after, "role": "feedback", "step_seconds": 0.1, "cue": None}}})
    text = suite_report.hard_case(tmp_path)
    assert "after a fixed 300 iterations" in text
    row = next(ln for ln in text.splitlines() if ln.startswith(f"| {name} |"))
    # (0.70 - 0.25) / (0.95 - 0.25) = 64 %; four classes
    assert row == f"| {name} | 0.250 ± 0.000 (chance 0.25) | 0.950 ± 0.000 | 0.700 ± 0.071 | 64 % ± 10 | 2 |"
    assert suite_report.hard_case(tmp_path / "none") is None
    code = run_main(efficacy_suite.main, ["--hard-case", "--iterations", "100", "--report-only"])
    assert code == 2 and "--hard-case fixes --methods, --iterations, --stop and --tag" in capsys.readouterr().err


def test_extra_headline_seeds_count_per_method(tmp_path, capsys):
    from common.cli import run_main

    def rec(seed, labels):
        methods = {lab: {"test": 0.5 + 0.1 * i, "role": "baseline" if lab == "continued" else "feedback",
                         "step_seconds": 0.1, "cue": None} for i, lab in enumerate(labels)}
        return {"set": "s1", "seed": seed, "n_masked": 16, "n_train": 1600, "share_masked": 0.01, "iterations": 1000,
                "base_train": 1.0, "base_val": 1.0, "base_test": 0.5, "oracle_test": 0.9, "methods": methods}

    rows = suite_report.set_table("s1", [rec(0, ["continued", "pas", "swap"]), rec(1, ["continued", "swap"])])
    lines = {ln.split(" | ")[0][2:]: ln for ln in rows.splitlines() if ln.startswith("| ")}
    assert lines["pas"].endswith("| 1 |") and lines["swap"].endswith("| 2 |")
    # swap is 0.7 in seed 0 (third) and 0.6 in seed 1 (second); Δ vs continued 0.2 and 0.1
    assert lines["swap"].startswith("| swap | feedback | 0.650 ± 0.071 |") and "| 0.150 ± 0.071 |" in lines["swap"]
    assert set(efficacy_suite.HEADLINE_METHODS) <= {m.get("label", m["name"]) for m in efficacy_suite.METHODS}
    code = run_main(efficacy_suite.main, ["--headline", "--methods", "continued", "--report-only"])
    assert code == 2 and "--headline fixes the methods" in capsys.readouterr().err


def test_goal_rows_count_only_sets_whose_base_leans_on_the_cue():
    def rec(name, base, oracle, swap, flips_after):
        return {"set": name, "seed": 0, "iterations": 100, "base_test": base, "oracle_test": oracle, "methods": {
            "continued": {"test": base, "role": "baseline", "step_seconds": 0.1, "cue": None},
            "swap": {"test": swap, "role": "feedback", "step_seconds": 0.1,
                     "cue": {"before": {"flip_rate": 0.5}, "after": {"flip_rate": flips_after}}}}}

    # c0.9: gap 0.005 (not measurable); c1.0: one set with a gap (75 %, flips -80 %) and one without
    text = suite_report.goal_rows({"c0.9": {"a": [rec("a", 0.98, 0.985, 0.97, 0.5)]},
                                   "c1.0": {"b": [rec("b", 0.5, 0.9, 0.8, 0.1)], "c": [rec("c", 0.98, 0.985, 0.9, 0.5)]}})
    rows = {ln.split(" | ")[0][2:]: ln.split(" | ") for ln in text.splitlines() if ln.startswith("| c")}
    assert rows["c0.9"][1].startswith("– (no set with a gap") and rows["c0.9"][2] == "–" and rows["c0.9"][3] == "–"
    assert rows["c1.0"][1].startswith("75 % / 75 % over 1 set(s)")
    assert rows["c1.0"][2] == "75 % ± 0" and rows["c1.0"][3] == "80 %"
