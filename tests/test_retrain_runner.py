"""The retraining run: outputs, summary contract, config validation, bad input."""
import json
import logging

import numpy as np
import pytest

from classification_models.cam import in_mask_energy
from common.errors import UserError
from common.run_files import SCHEMA_VERSION, load_history_file, load_run_info, load_summary
from retraining.data import masked_set_from_items
from retraining.runner import result_lines, run_retraining
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items


#: the retraining config the runs here start from
RUN = {"name": "t", "selection": "sel.json", "iterations": 2, "eval_every": 1, "batch": {"random": 6, "selected": 2},
       "methods": [{"name": "continued"}, {"name": "pasa"},
                   {"name": "pas", "label": "pas_inv", "params": {"mask_variant": "inverted"}}]}


def test_in_mask_energy_reference():
    cams = np.array([[[1.0, -2.0], [3.0, 0.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
    masks = np.array([[[255, 255], [0, 0]], [[255, 0], [0, 0]]], np.uint8)
    e = in_mask_energy(cams=cams, masks=masks)
    assert e[0] == pytest.approx(1 / 4) and np.isnan(e[1])


def test_run_writes_contract_outputs(tmp_path, caplog, monkeypatch):
    import retraining.runner as runner

    seen = []  # the cue-swapped validation copy each method was chosen with
    real_loop = runner.run_loop
    monkeypatch.setattr(runner, "run_loop", lambda *a, **k: seen.append(k["val_swap"]) or real_loop(*a, **k))
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    sel = masked_set_from_items(ds, items, masks)
    hitems, hmasks = selection_items(ds, 2, offset=5)
    held = masked_set_from_items(ds, hitems, hmasks)
    before = [w.copy() for w in clf.model.get_weights()]
    caplog.set_level(logging.INFO, logger="retraining")
    path = run_retraining(make_retrain_config(RUN, track_test=True), base=clf, dataset=ds, selected=sel, heldout=held,
                          run_dir=tmp_path / "t")
    lines = "\n".join(result_lines(path)).strip().splitlines()  # what exp_backprops prints
    assert lines[-1] == str(path) and "| pasa |" in "\n".join(lines)
    progress = [r.getMessage() for r in caplog.records if r.name.startswith("retraining")]
    assert progress[0] == "evaluating the base model (3 selected, 2 held-out masked images)"
    assert [m.split(" (")[0] for m in progress if m.startswith("method ")] == [
        "method continued", "method pasa", "method pas_inv"]
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["failure"] is None
    s = load_summary(path)  # every key and type checked by the schema
    assert s.status == "complete"
    assert s.base.cue is None  # the tiny data set has no test images with a known cue region
    assert None not in (s.base.accuracy.train, s.base.accuracy.val, s.base.accuracy.test, s.base.accuracy.val_swap)
    assert list(s.methods) == ["continued", "pasa", "pas_inv"]
    assert [m.role for m in s.methods.values()] == ["baseline", "feedback", "control"]
    # one copy from the expert's masks, the same for every method, the wrong-masks control included
    assert len(seen) == 3 and all(np.array_equal(v[0], seen[0][0]) and np.array_equal(v[1], seen[0][1]) for v in seen)
    info = load_run_info(tmp_path / "t")
    assert info.val_swap.n == len(seen[0][1]) and 0 <= info.val_swap.n_complete <= info.val_swap.n
    for m in s.methods.values():
        # early stopping on the cue-swapped validation copy by default; 2 steps < patience
        assert m.iterations.run == 2 and m.iterations.max == 2
        assert m.iterations.best.on == "val_swap" and m.iterations.best.iteration in (0, 1, 2)
        assert set(m.report) == {"train", "val", "test"}
        assert 0 <= m.in_mask_cam_energy.heldout.before <= 1 and 0 <= m.in_mask_cam_energy.selected.after <= 1
        assert set(m.selected_probabilities) == set(sel.indices)
        p = m.selected_probabilities["train_00000"]
        assert len(p.before) == 3 and sum(p.after) == pytest.approx(1, abs=1e-4)
        assert m.step_seconds > 0
    hist = load_history_file(tmp_path / "t" / "pasa" / "history.jsonl")
    assert [r.iteration for r in hist] == [1, 2]
    assert hist[0].val_accuracy is not None and set(hist[0].selected_p_true) == set(sel.indices)
    assert hist[0].penalty > 0 and hist[0].total == pytest.approx(hist[0].ce + hist[0].penalty, rel=1e-4)
    assert (tmp_path / "t" / "pasa" / "cams_selected.png").exists()
    assert (tmp_path / "t" / "pasa" / "cams_heldout.png").exists()
    # CAM arrays: the selected images' CAMs before/after and at every check of the run
    from plot_utils.results import load_cams

    rec = load_cams(tmp_path / "t" / "pasa" / "cams.npz")
    assert set(rec) == {"selected", "heldout", "along"}
    assert rec["selected"]["indices"].tolist() == sel.indices and rec["heldout"]["cams_after"].shape == (2, 16, 16)
    np.testing.assert_allclose(rec["selected"]["probs_before"], clf.predict_proba(sel.images), atol=1e-5)
    assert rec["along"]["iterations"].tolist() == [0, 1, 2] and rec["along"]["cams"].shape == (3, 3, 4, 4)
    # test images whose prediction changed: counts in the summary agree with the accuracies
    ch = s.methods["pasa"].changed_test
    n_test = len(ds.arrays("test"))
    d_acc = s.methods["pasa"].accuracy.test - s.base.accuracy.test
    assert (ch.fixed - ch.broken) / n_test == pytest.approx(d_acc)
    # track_test: the test accuracy at every check, from the base's at iteration 0
    along = json.loads((tmp_path / "t" / "pasa" / "along.json").read_text())["rows"]
    assert [r["iteration"] for r in along] == [0, 1, 2] and along[0]["test"] == pytest.approx(s.base.accuracy.test)
    # the retrained model is kept and is the one that was evaluated
    from classification_models.classifier import Classifier

    kept = Classifier.load(tmp_path / "t" / "pasa" / "model.keras")
    assert kept.evaluate(ds, "test")["accuracy"] == pytest.approx(s.methods["pasa"].accuracy.test)
    table = (tmp_path / "t" / "comparison.md").read_text()
    assert table.startswith("| method |")
    last = table.strip().splitlines()[-1]  # 2 iterations of a tiny model: whether pasa beat continued varies
    assert last.startswith("Verdict: ") and "best feedback method pasa reaches test" in last
    run = load_run_info(tmp_path / "t")
    assert run.methods["pas_inv"].params["mask_variant"] == "inverted"
    assert run.selected == sel.indices and run.heldout == held.indices and run.base.train_result is None
    assert not (tmp_path / ".t.partial").exists()
    # the base model is never modified
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.model.get_weights()))


def test_bad_method_writes_nothing(tmp_path):
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 2)
    sel = masked_set_from_items(ds, items, masks)
    cfg = make_retrain_config(RUN, methods=[{"name": "continued"},
                                            {"name": "selective_dropout", "params": {"k": 50}}])
    with pytest.raises(UserError, match="k=50 but the last conv layer has only 8 filters"):
        run_retraining(cfg, base=clf, dataset=ds, selected=sel, heldout=sel, run_dir=tmp_path / "t")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match=r"methods\[1\]: unknown method 'foo'"):
        run_retraining(make_retrain_config(RUN, methods=[{"name": "pas"}, {"name": "foo"}]), base=clf, dataset=ds,
                       selected=sel, heldout=sel, run_dir=tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_config_validation():
    with pytest.raises(UserError, match="unknown key 'iteration'"):
        make_retrain_config(RUN, iteration=3)
    with pytest.raises(UserError, match="iterations must be an integer >= 1, got 0"):
        make_retrain_config(RUN, iterations=0)
    with pytest.raises(UserError, match="'pas' appears twice"):
        make_retrain_config(RUN, methods=[{"name": "pas"}, {"name": "pas"}])
    with pytest.raises(UserError, match="mask_resize.mode must be one of"):
        make_retrain_config(RUN, mask_resize={"mode": "nearest"})
    with pytest.raises(UserError, match="methods must have at least 1"):
        make_retrain_config(RUN, methods=[])


def test_a_methods_numbers_do_not_depend_on_the_methods_run_before_it(tmp_path):
    """A user's model with an unseeded Dropout: its copy for each method draws its dropout
    seed when it is made, so every method's copy is made under that method's own seed."""
    import json

    import keras
    from keras import layers

    from classification_models.classifier import Classifier
    from retraining.data import masked_set_from_items
    from tests.fixtures_retrain import SIZE

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 1))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)  # no seed, as users write it
    base = Classifier(keras.Model(inp, layers.Dense(3, activation="softmax")(x)), ["a", "b", "c"])
    ds = make_dataset()
    items, masks = selection_items(ds, 3)
    sel = masked_set_from_items(ds, items, masks)
    run = {"name": "o", "selection": "sel.json", "iterations": 3, "eval_every": 3, "overlays": False,
           "batch": {"random": 6, "selected": 2}, "save_models": False, "counterfactual_val": False}
    losses = {}
    for name, methods in (("both", [{"name": "continued"}, {"name": "pas"}]), ("alone", [{"name": "pas"}])):
        cfg = make_retrain_config({**run, "methods": methods})
        run_retraining(cfg, base=base, dataset=ds, selected=sel, heldout=sel, run_dir=tmp_path / name)
        rows = [json.loads(line) for line in (tmp_path / name / "pas" / "history.jsonl").read_text().splitlines()]
        losses[name] = [(r["total"], r["ce"]) for r in rows if "total" in r]
    assert len(losses["alone"]) == 3 and losses["both"] == losses["alone"]


def test_method_seed_depends_on_label_not_position():
    from retraining.runner import method_seed

    assert method_seed(0, "pas") == method_seed(0, "pas")
    assert method_seed(0, "pas") != method_seed(0, "pasa")
    assert method_seed(1, "pas") == method_seed(0, "pas") + 1


def test_reversed_cue_is_flagged_before_the_verdict(real_runs):
    from dataclasses import replace

    from retraining.outputs import comparison_table, reversed_cue_warnings

    real = load_summary(real_runs.retrain)  # a real run's summary, its accuracies set to a reversed cue

    def with_accuracy(summary, where, **acc):
        if where == "base":
            return replace(summary, base=replace(summary.base, accuracy=replace(summary.base.accuracy, **acc)))
        m = summary.methods[where]
        return replace(summary, methods={**summary.methods, where: replace(m, accuracy=replace(m.accuracy, **acc))})

    summary = with_accuracy(real, "base", val=1.0, val_swap=0.25, test=0.27)
    summary = with_accuracy(summary, "continued", val=1.0, val_swap=0.3, test=0.27)
    summary = with_accuracy(summary, "pasa", val=0.25, val_swap=0.97, test=0.30)
    warnings = reversed_cue_warnings(summary)
    assert len(warnings) == 1 and warnings[0].startswith("Warning: pasa reads the cue backwards (validation accuracy "
                                                         "0.250 with the cue, 0.970 with it swapped")
    lines = [ln for ln in comparison_table(summary, {}).splitlines() if ln.strip()]
    assert lines[-2] == warnings[0] and lines[-1].startswith("Verdict: best feedback method pasa reaches test 0.300")
    # a method that ignores the cue (both about equal) is not flagged
    assert reversed_cue_warnings(with_accuracy(summary, "pasa", val=0.96, val_swap=0.97)) == []


def test_the_verdict_says_first_when_feedback_did_not_help_and_why(real_runs):
    from dataclasses import replace

    from common.run_files import CueChange, CueScores
    from retraining.outputs import verdict

    real = load_summary(real_runs.retrain)

    def cue(flips):
        return CueScores(n=40, flip_rate=flips, delta_p_true=-0.1, energy_true=None, energy_pred=None, wr=None)

    pasa = real.methods["pasa"]
    pasa = replace(pasa, accuracy=replace(pasa.accuracy, test=0.70, worst_group=0.40),
                   cue=CueChange(before=cue(0.40), after=cue(0.36)),
                   iterations=replace(pasa.iterations, still_learning=True, max=100, ce_drop=0.2))
    cont = real.methods["continued"]
    summary = replace(real, base=replace(real.base, accuracy=replace(real.base.accuracy, test=0.68, worst_group=0.30),
                                         cue=cue(0.40)),
                      methods={"continued": replace(cont, accuracy=replace(cont.accuracy, test=0.72)), "pasa": pasa})
    line = verdict(summary, propagated={"heldout_quality": {"precision": 0.7, "recall": 0.55}, "quality": None})
    assert line == ("Verdict: feedback did NOT beat the best no-feedback baseline continued (0.720); likely cause: "
                    "the propagated masks cover only 55 % of the marked cue; the cue still drives its predictions "
                    "(cue flips 0.40 → 0.36); still learning at the budget (100 iterations); try: mask more images or "
                    "raise \"propagation\": {\"min_recall\": ...}; check that the masks cover the whole cue; mask more "
                    "images; raise iterations. best feedback method pasa reaches test 0.700 (-0.020 vs the best "
                    "no-feedback baseline continued, 0.720; base 0.680); cue flip rate on test 0.40 → 0.36; "
                    "worst-group accuracy 0.300 → 0.400.")
    # when it did help: the plain line, worst-group accuracy before → after at its end
    won = replace(summary, methods={**summary.methods, "pasa": replace(pasa, accuracy=replace(pasa.accuracy, test=0.9))})
    assert verdict(won).startswith("Verdict: best feedback method pasa reaches test 0.900 (+0.180 vs")
    assert verdict(won).endswith("; worst-group accuracy 0.300 → 0.400.")
    # only feedback methods ran: the change from the base, and that no baseline ran
    alone = replace(won, methods={"pasa": won.methods["pasa"]})
    assert verdict(alone) == ("Verdict: best feedback method pasa reaches test 0.900 (+0.220 vs the base, 0.680; no "
                              "no-feedback baseline ran, so what the masks add beyond more training is not measured: "
                              "add {\"name\": \"continued\"}); cue flip rate on test 0.40 → 0.36; worst-group "
                              "accuracy 0.300 → 0.400.")
    assert verdict(replace(won, methods={"continued": won.methods["continued"]})) is None


def test_a_method_still_learning_at_the_last_iteration_is_flagged(real_runs):
    from dataclasses import replace

    from retraining.outputs import comparison_table, still_learning_warnings

    real = load_summary(real_runs.retrain)
    assert still_learning_warnings(real) == []  # a short real run: nothing to flag
    m = real.methods["pasa"]
    its = replace(m.iterations, ce_drop=0.21, still_learning=True)
    summary = replace(real, methods={**real.methods, "pasa": replace(m, iterations=its)})
    best = its.best.iteration if its.best else its.run
    want = (f"Warning: pasa used all {its.max} iterations and was still learning (training loss down 0.21 over "
            f"the last iterations, best checkpoint at {best}): raise iterations.")
    assert still_learning_warnings(summary) == [want]
    assert want in comparison_table(summary, {}).splitlines()


def test_a_budget_below_the_stopping_minimum_says_what_the_run_does(caplog):
    from retraining.stopping import stopping_rule

    with caplog.at_level(logging.INFO, logger="retraining.stopping"):
        rule = stopping_rule(make_retrain_config(RUN).stopping, has_val=True, has_val_swap=True, iterations=100)
    assert rule.on == "val_swap" and rule.start_from == 500
    assert [r.getMessage() for r in caplog.records] == [
        "stopping.start_from 500 is above iterations 100: no early stop; every method runs all 100 iterations and "
        "keeps its best checkpoint on val_swap"]
