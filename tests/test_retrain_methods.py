"""Retraining methods: registry contract, batch composition, replacements, params."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from retraining.config import PropagationSpec, StopSpec
from retraining.data import RetrainData, compose_indices, masked_set_from_items
from retraining.loop import LoopResult, clone_classifier, end_of_run, make_optimizer, run_loop
from retraining.methods import REGISTRY, get_method
from retraining.stopping import ce_still_falls
from tests.fixtures_retrain import ready_method, selection_items


def test_compose_indices_counts_and_seed():
    a = compose_indices(np.random.default_rng(3), n_train=20, n_random=7, pool_size=4, n_selected=3)
    b = compose_indices(np.random.default_rng(3), n_train=20, n_random=7, pool_size=4, n_selected=3)
    assert len(a[0]) == 7 and len(set(a[0].tolist())) == 7 and len(a[1]) == 3 and len(set(a[1].tolist())) == 3
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(UserError, match=r"^batch.selected is 5 but the pool holds only 2 images; .*with_replacement: true"):
        compose_indices(np.random.default_rng(3), n_train=20, n_random=0, pool_size=2, n_selected=5)
    c = compose_indices(np.random.default_rng(3), n_train=20, n_random=0, pool_size=2, n_selected=5,
                        with_replacement=True)
    assert len(c[0]) == 0 and set(c[1].tolist()) <= {0, 1} and len(c[1]) == 5
    with pytest.raises(UserError, match="selection is empty"):
        compose_indices(np.random.default_rng(0), n_train=5, n_random=1, pool_size=0, n_selected=1)


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - {"misclassified"}))
def test_every_method_composes_batches_and_steps(name, method_env):
    ds, _, data = method_env
    m = ready_method(name, method_env)
    batch = m.sample_batch(np.random.default_rng(0))
    n = len(batch["labels"])
    assert n == 9 and batch["images"].shape == (9, 16, 16, 1) and batch["masks"].shape == (9, 4, 4)
    assert batch["selected"].tolist() == [0] * 6 + [1] * 3
    # only swap masks (and swaps) random images: those that carry a propagated mask
    assert bool(batch["masks"][:6].any()) == (name == "swap")
    # the selected slots carry their pool items' masks (the methods that ignore masks too)
    assert batch["masks"][6:].sum() > 0
    # the selected slots hold pool images, whose labels match their original
    origin_labels = data.selected.labels[m.pool.origin]
    np.testing.assert_array_equal(m.pool.labels, origin_labels)
    res = run_loop(m, iterations=2, optimizer=make_optimizer("adam", 1e-3), seed=0, eval_every=1,
                   val=(ds.arrays("val").images, ds.arrays("val").labels), history_path=None)
    assert len(res.history) == 2 and np.isfinite(res.history[-1].total) and res.step_seconds > 0
    assert set(res.history[0].selected_p_true) == set(data.selected.indices)
    assert res.history[1].val_accuracy is not None


def _stop(**kw) -> StopSpec:
    """Stopping on ``val`` from iteration 0, the training loss not consulted (unless given)."""
    return StopSpec(**{"on": "val", "start_from": 0, "min_ce_drop": 1e9, **kw})


def test_early_stopping_without_improvement_ends_on_the_starting_weights(method_env):
    ds, clf, _ = method_env
    m = ready_method("continued", method_env)
    start = [w.copy() for w in m.clf.model.get_weights()]
    val = (ds.arrays("val").images, ds.arrays("val").labels)
    # no score can rise by more than 1: the run stops after `patience` iterations
    res = run_loop(m, iterations=20, optimizer=make_optimizer("adam", 1e-2), seed=0, eval_every=1, val=val,
                   history_path=None, stopping=_stop(patience=3, min_delta=1.0))
    assert res.iterations_run == 3 and len(res.history) == 3
    assert res.best["iteration"] == 0 and res.best["restored"] is True
    for a, b in zip(m.clf.model.get_weights(), start):
        np.testing.assert_array_equal(a, b)
    # start_from: no stop before that iteration, however long the plateau; then at once
    m = ready_method("continued", method_env)
    res = run_loop(m, iterations=20, optimizer=make_optimizer("adam", 1e-2), seed=0, eval_every=1, val=val,
                   history_path=None, stopping=_stop(patience=3, min_delta=1.0, start_from=7))
    assert res.iterations_run == 7 and res.best["iteration"] == 0


def test_a_falling_training_loss_holds_off_the_stop():
    # halves of the last `patience` = 4 iterations: means 1.5 and 1.25 -> fell by 0.25
    slow_climb = [2.0, 1.0, 1.5, 1.5, 1.25, 1.25]
    assert ce_still_falls(slow_climb, patience=4, min_drop=0.05)
    assert not ce_still_falls(slow_climb, patience=4, min_drop=0.25)  # not by more than 0.25
    assert not ce_still_falls(slow_climb, patience=4, min_drop=1e9)  # a large value turns it off
    # a flat or rising loss, or too short a history, never holds it off
    assert not ce_still_falls([0.05, 0.04, 0.05, 0.06], patience=4, min_drop=0.0)
    assert not ce_still_falls([1.3, 1.2, 1.0], patience=4, min_drop=0.05)
    # only the last `patience` iterations count: an early fall is forgotten
    assert not ce_still_falls([9.0, 5.0, 0.1, 0.1, 0.1, 0.1], patience=4, min_drop=0.05)


def test_end_of_run_says_whether_the_method_was_still_learning():
    from common.run_files import HistoryRow

    def result(ce, best_iteration):
        rows = [HistoryRow(iteration=i + 1, total=c, ce=c, penalty=0.0) for i, c in enumerate(ce)]
        best = {"on": "val_swap", "iteration": best_iteration, "score": 0.7, "restored": True}
        return LoopResult(step_seconds=0.1, history=rows, iterations_run=len(ce), best=best)

    falling = [2.0] * 4 + [1.5] * 2 + [1.25] * 2  # last 4: halves 1.5 and 1.25
    end = end_of_run(result(falling, 8), iterations=8, window=4, min_drop=0.05)
    assert end.ce_drop == 0.25 and end.still_learning is True and end.best.iteration == 8 and end.max == 8
    # stopped early, or the loss flat, or the best check long ago: not still learning
    assert end_of_run(result(falling, 8), iterations=10, window=4, min_drop=0.05).still_learning is False
    assert end_of_run(result([1.0] * 8, 8), iterations=8, window=4, min_drop=0.05).still_learning is False
    assert end_of_run(result(falling, 3), iterations=8, window=4, min_drop=0.05).still_learning is False
    assert end_of_run(result(falling[:3], 3), iterations=3, window=4, min_drop=0.05).ce_drop is None


def test_early_stopping_keeps_the_best_scoring_weights(method_env):
    ds, clf, _ = method_env
    m = ready_method("continued", method_env)
    val = (ds.arrays("val").images, ds.arrays("val").labels)
    start = float((m.clf.predict_proba(val[0]).argmax(1) == val[1]).mean())
    res = run_loop(m, iterations=8, optimizer=make_optimizer("adam", 1e-2), seed=0, eval_every=2, val=val,
                   history_path=None, stopping=_stop(patience=100, min_delta=0.0))
    scores = {0: start, **{r.iteration: r.val_accuracy for r in res.history if r.val_accuracy is not None}}
    assert res.iterations_run == 8 and sorted(scores) == [0, 2, 4, 6, 8]
    assert res.best["score"] == max(scores.values()) == scores[res.best["iteration"]]
    # the model ends with the weights that scored best
    final = float((m.clf.predict_proba(val[0]).argmax(1) == val[1]).mean())
    assert final == pytest.approx(res.best["score"])


def test_same_seed_same_batches(method_env):
    m = ready_method("pas", method_env)
    b1 = m.sample_batch(np.random.default_rng(5))
    b2 = m.sample_batch(np.random.default_rng(5))
    for k in b1:
        np.testing.assert_array_equal(b1[k], b2[k])


def test_misclassified_batch_mix(method_env):
    ds, clf, data = method_env
    m = get_method("misclassified")
    m.setup(clf=clone_classifier(clf), data=data, batch_random=7, batch_selected=3, seed=0)
    assert len(m.wrong) > 0  # untrained tiny model: many wrong
    tr, sel = m.sample_positions(np.random.default_rng(0))
    assert len(tr) == 10 and len(sel) == 0
    assert np.isin(tr[-7:], m.wrong).all()  # 70 % of 10 from the misclassified list


@pytest.mark.parametrize("name", ["crop_replace", "inpaint_replace", "counterexamples"])
def test_replacements_change_only_masked_pixels(name, method_env):
    ds, _, data = method_env
    m = ready_method(name, method_env, {"variants": 2, "min_diff": 0.0})
    pool = m.pool
    # OpenCV inpainting is deterministic: one fill per image (copies would only re-weight)
    per_image = 1 if name == "inpaint_replace" else 2
    assert len(pool) == per_image * len(data.selected)
    assert m.describe()["fills"]["kept"] == len(pool) and m.describe()["fills"]["rejected"] == 0
    orig = data.selected.images[pool.origin]
    keep = pool.masks == 0
    np.testing.assert_array_equal(pool.images[keep], orig[keep])
    assert np.any(pool.images[~keep] != orig[~keep])


def test_selective_dropout_scale_in_batch(method_env):
    m = ready_method("selective_dropout", method_env)
    batch = m.sample_batch(np.random.default_rng(1))
    fs = batch["feature_scale"]
    assert np.all(fs[:6] == 1.0)
    assert np.all((fs[6:] == 0).sum(1) == 3) and np.allclose(fs[6:][fs[6:] > 0], 8 / 5)


def test_pas_presets_and_scaling(method_env):
    _, _, data = method_env
    h, w, k = data.grid
    th = ready_method("pas", method_env, {"preset": "thesis"})
    assert th.lam == pytest.approx(1 / (5 * h * w * k)) and th.normalize == "batch"
    cal = ready_method("pas", method_env)
    assert cal.normalize == "masked" and cal.lam == pytest.approx(th.lam * 100)
    assert ready_method("pas", method_env, {"lam": 0.5}).lam == 0.5


def test_mask_variants_apply_to_pool(method_env):
    _, _, data = method_env
    inv = ready_method("pasa", method_env, {"mask_variant": "inverted"})
    np.testing.assert_array_equal(inv.pool.masks > 0, data.selected.masks == 0)
    inc = ready_method("pasa", method_env, {"mask_variant": "incomplete"})
    assert (inc.pool.masks > 0).sum() * 2 == (data.selected.masks > 0).sum()


def test_rrr_calibrates_start_penalty(method_env):
    m = ready_method("rrr", method_env, {"start_penalty": 2.0})
    assert m.raw_penalty() * m.lam == pytest.approx(2.0, rel=1e-3)


def test_unknown_method_and_params():
    with pytest.raises(UserError, match="valid methods: continued"):
        get_method("pass")
    with pytest.raises(UserError, match=r"^method 'pasa' params: unknown key 'B' \(valid keys: base, detach_probability, "
                                        r"mask_variant, threshold\)$"):
        get_method("pasa", {"B": 1})
    with pytest.raises(UserError, match=r"^method 'pasa' params: base must be a number > 0.0, got 'x'$"):
        get_method("pasa", {"base": "x"})
    with pytest.raises(UserError, match=r"^method 'pas' params: normalize must be one of \[.*\], got 'all'$"):
        get_method("pas", {"normalize": "all"})
    with pytest.raises(UserError, match=r"^method 'swap' params: random_share must be a number in \[0.0, 1.0\], got 1.5$"):
        get_method("swap", {"random_share": 1.5})
    with pytest.raises(UserError, match=r"^method 'continued' params: unknown key 'mask_variant' \(it takes no keys\)$"):
        get_method("continued", {"mask_variant": "inverted"})
    # the defaults and the types a config gets
    p = get_method("rrr", {"lam": 2}).params
    assert (p.lam, p.start_penalty, p.mask_variant) == (2.0, 1.0, "none") and isinstance(p.lam, float)


def test_empty_selection_fails_for_mask_methods(method_env):
    ds, clf, data = method_env
    empty = RetrainData(ds, masked_set_from_items(ds, [], []), data.heldout, data.grid, data.mask_resize)
    with pytest.raises(UserError, match="'pas' needs a selection"):
        get_method("pas").setup(clf=clf, data=empty, batch_random=4, batch_selected=2, seed=0)
    m = get_method("continued")
    m.setup(clf=clone_classifier(clf), data=empty, batch_random=4, batch_selected=2, seed=0)
    assert len(m.sample_batch(np.random.default_rng(0))["labels"]) == 6


def test_bad_selection_items(method_env):
    ds, _, _ = method_env
    items, masks = selection_items(ds, 2)
    items[1].index = "train_99999"
    with pytest.raises(UserError, match="'train_99999' does not exist"):
        masked_set_from_items(ds, items, masks)
    items, masks = selection_items(ds, 2)
    with pytest.raises(UserError, match="mask for index 'train_00001' is 8×8 but the image is 16×16"):
        masked_set_from_items(ds, items, [masks[0], masks[1][:8, :8]])
    bad = masks.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(UserError, match="'train_00000' is not binary"):
        masked_set_from_items(ds, items, bad)
    items[0].index = "val_00001"
    with pytest.raises(UserError, match="split 'val'"):
        masked_set_from_items(ds, items, masks)


def test_replacement_rejects_fills_too_close_to_the_original(method_env):
    """A fill within ``min_diff`` of the original inside the mask is never trained on."""
    from common.errors import UserError

    with pytest.raises(UserError, match="stays within 255"):
        ready_method("crop_replace", method_env, {"variants": 2, "min_diff": 255.0, "max_tries": 2})


def test_inpaint_replace_with_a_learned_inpainter_from_params(method_env, tmp_path):
    """Method D takes the learned inpainter by name and model path, as a config gives it."""
    from image_generator.learned import build_inpainter

    ds, _, data = method_env
    model = build_inpainter(image_shape=ds.image_shape, base_filters=4, seed=0)
    path = tmp_path / "inpainter.keras"
    model.save(path)
    m = ready_method("inpaint_replace", method_env, {"generator": "learned", "generator_params": {"model_path": str(path)},
                                         "variants": 2, "min_diff": 0.0})
    pool = m.pool
    assert m.describe()["fills"]["generator"] == "learned"
    assert len(pool) == 2 * len(data.selected)  # stochastic: one fill per variant
    orig = data.selected.images[pool.origin]
    keep = pool.masks == 0
    np.testing.assert_array_equal(pool.images[keep], orig[keep])
    for i in range(len(data.selected)):  # two noise seeds per image, two different fills
        a, b = pool.images[pool.origin == i]
        assert np.any(a != b)


def test_warmup_ramps_the_learning_rate_linearly():
    from retraining.loop import WarmUp

    schedule = WarmUp(1e-3, 4)
    rates = [float(schedule(tf.constant(s))) for s in range(6)]
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    # the optimiser follows it: after one applied step its rate is the second value
    opt = make_optimizer("adam", 1e-3, warmup=4)
    v = tf.Variable([1.0])
    opt.apply_gradients([(tf.constant([1.0]), v)])
    assert float(opt.learning_rate) == pytest.approx(5e-4)
    assert float(make_optimizer("sgd", 1e-2).learning_rate) == pytest.approx(1e-2)


def test_propagation_draws_pixel_masks_for_masks_that_cover_most_of_the_image(method_env):
    """``pixels: auto``: small masks are propagated as whole cells; masks covering most of
    their images (a painted background) pixel by pixel; ``never``/``always`` force it.
    The counterfactual validation copy uses the same propagator."""
    from retraining.val_swap import cue_swapped_copy

    ds, clf, data = method_env
    small = data.propagated(clf)
    assert small.describe()["pixels"] is None and small.describe()["threshold"] <= 0.8
    # cell masks are unions of whole cells: constant on every 4x4 block of the 16x16 images
    blocks = small.masks.reshape(len(small.masks), 4, 4, 4, 4)
    assert (blocks == blocks[:, :, :1, :, :1]).all()
    items, masks = selection_items(ds, 4)
    inverse = masked_set_from_items(ds, items, 255 - masks)  # everything but the cue: > half of the image
    assert (inverse.masks > 0).mean() >= 0.5
    h, w, k = clf.grid_shape
    big = RetrainData(ds, inverse, masked_set_from_items(ds, [], []), (h, w, k), {"mode": "area", "threshold": 0.25},
                      propagation=PropagationSpec(top=2))
    prop = big.propagated(clf)
    assert prop.describe()["pixels"] == 0.5 and prop.propagator.pixels is not None
    assert set(np.unique(prop.masks).tolist()) <= {0, 255}
    cf = cue_swapped_copy(clf, big, split="val", seed=0)
    assert cf is not None and cf.images.shape[1:] == ds.image_shape and cf.n == len(cf.labels) == len(cf.cues)
    assert (cf.cues != cf.labels).all()  # every swapped image carries another class's cue
    never = RetrainData(ds, inverse, masked_set_from_items(ds, [], []), (h, w, k), {"mode": "area", "threshold": 0.25},
                        propagation=PropagationSpec(top=2, pixels="never"))
    assert never.propagated(clf).propagator.pixels is None


@pytest.mark.parametrize("name", ["swap", "filter_penalty"])
def test_a_wrong_masks_control_propagates_its_own_masks(name, method_env):
    """``mask_variant``: the control's masks, not the expert's, are what propagation starts
    from, so its feedback is wrong on the propagated images too; the expert's propagation
    is computed once and shared by the methods without a variant."""
    ds, clf, data = method_env
    expert = ready_method(name, method_env)
    control = ready_method(name, method_env, params={"mask_variant": "inverted"})
    assert np.array_equal(expert.feedback_masks, data.selected.masks)
    assert np.array_equal(control.feedback_masks, 255 - data.selected.masks)
    assert expert.prop is data.propagated(clf) and control.prop is not expert.prop
    assert control.prop is data.propagated(clf, masks=control.feedback_masks)  # cached per mask set
    assert not np.array_equal(control.prop.grid.mean(axis=0), expert.prop.grid.mean(axis=0))


def test_the_propagation_settings_have_one_source():
    """``propagate_selection`` takes the config's ``PropagationSpec`` itself (no restated
    defaults), ``RetrainData`` carries it, and ``select_tool.auto --propagate`` calibrates
    the threshold as a retraining config does."""
    import inspect

    from retraining.propagate import propagate_selection
    from select_tool.auto import propagate

    spec = PropagationSpec()
    params = inspect.signature(propagate_selection).parameters
    assert params["spec"].default is inspect.Parameter.empty
    assert not {f.name for f in dataclasses.fields(PropagationSpec)} & set(params)
    assert (spec.calibrate, spec.min_recall, spec.threshold) == ("leave_one_out", 0.85, 0.8)
    auto = inspect.signature(propagate).parameters
    assert (auto["threshold"].default, auto["min_recall"].default) == (spec.threshold, spec.min_recall)
