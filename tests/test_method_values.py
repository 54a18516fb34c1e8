"""Retraining methods by value: the penalty term on one batch (zero for the plain-CE
methods, positive for the mask penalties where the model fires inside the masks) and the
selected images' true-class probability after a short run."""
import numpy as np
import pytest

from common.errors import UserError
from retraining.loop import make_optimizer, run_loop, to_tensors
from retraining.methods import get_method
from tests.fixtures_retrain import ready_method

#: the replacement methods' fills, as the other method tests make them
FILLS = {"variants": 2, "min_diff": 0.0}


def _case_id(value):
    """Test ids: the method name, then its params as ``key=value``."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "defaults"
    return str(value)


def _loss_on_one_batch(m, seed=0):
    """``(batch, total, ce, penalty)`` of ``m.loss`` on the batch ``m`` draws with ``seed``."""
    batch = m.sample_batch(np.random.default_rng(seed))
    total, logs = m.loss(m.clf, to_tensors(batch))
    return batch, float(total), float(logs["ce"]), float(logs["penalty"])


def _activation_inside_masks(clf, batch):
    """Per batch image: the last-conv activation summed over its mask's grid cells."""
    acts, _ = clf.forward(batch["images"], training=False)
    return np.einsum("nhwk,nhw->n", np.asarray(acts), batch["masks"])


def _mean_selected_p_true(clf, selected):
    p = clf.predict_proba(selected.images)
    return float(p[np.arange(len(selected)), selected.labels].mean())


@pytest.mark.parametrize("name, params", [
    ("continued", {}), ("selective_dropout", {}), ("swap", {}), ("crop_replace", FILLS),
    ("inpaint_replace", FILLS), ("counterexamples", FILLS),
], ids=_case_id)
def test_plain_ce_methods_add_no_penalty_though_the_model_fires_inside_the_masks(name, params, method_env):
    m = ready_method(name, method_env, params)
    batch, total, ce, penalty = _loss_on_one_batch(m)
    inside = _activation_inside_masks(m.clf, batch)
    assert batch["selected"].sum() == 3 and (inside[batch["selected"] == 1] > 0).all()
    assert penalty == 0.0
    assert total == ce and ce > 0


def test_misclassified_adds_no_penalty(method_env):
    m = ready_method("misclassified", method_env, random=7, selected=3)
    batch, total, ce, penalty = _loss_on_one_batch(m)
    assert len(batch["labels"]) == 10 and batch["selected"].sum() == 0
    assert penalty == 0.0
    assert total == ce and ce > 0


@pytest.mark.parametrize("name, params", [
    ("pas", {}), ("pas", {"preset": "thesis"}), ("pasa", {}), ("rrr", {}), ("rrr_gradcam", {}),
    ("filter_penalty", {}), ("swap", {"penalty": "pas"}), ("swap", {"penalty": "pasa"}),
], ids=_case_id)
def test_mask_penalties_are_positive_where_the_model_fires_inside_the_masks(name, params, method_env):
    m = ready_method(name, method_env, params)
    batch, total, ce, penalty = _loss_on_one_batch(m)
    selected = batch["selected"] == 1
    inside = _activation_inside_masks(m.clf, batch)
    assert selected.sum() == 3 and (inside[selected] > 0).all()
    assert penalty > 0 and np.isfinite(penalty)
    assert total == pytest.approx(ce + penalty, rel=1e-5)


def test_pas_penalty_is_zero_on_a_batch_without_masks(method_env):
    m = ready_method("pas", method_env, random=6, selected=0)
    batch, total, ce, penalty = _loss_on_one_batch(m)
    assert batch["masks"].sum() == 0 and len(batch["labels"]) == 6
    assert penalty == 0.0 and total == pytest.approx(ce)


def test_rrr_start_penalty_is_calibrated_on_the_selected_images(method_env):
    m = ready_method("rrr", method_env, {"start_penalty": 0.5}, random=0, selected=4)
    batch, _, _, penalty = _loss_on_one_batch(m)
    # every pool image once: the batch penalty is the calibrated one (dropout-free model)
    assert sorted(batch["labels"].tolist()) == sorted(m.pool.labels.tolist())
    assert penalty == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("name, params", [
    ("continued", {}), ("pas", {}), ("pasa", {}), ("rrr", {}), ("rrr_gradcam", {}), ("swap", {}),
], ids=_case_id)
def test_a_short_run_raises_the_selected_images_true_class_probability(name, params, method_env):
    _, clf, data = method_env
    before = _mean_selected_p_true(clf, data.selected)
    m = ready_method(name, method_env, params)
    res = run_loop(m, iterations=15, optimizer=make_optimizer("adam", 1e-2), seed=0, eval_every=15, val=None,
                   history_path=None)
    after = _mean_selected_p_true(m.clf, data.selected)
    assert res.iterations_run == 15 and len(res.history) == 15
    assert after == pytest.approx(np.mean(list(res.history[-1].selected_p_true.values())), abs=1e-6)
    assert before == pytest.approx(0.4188, abs=1e-3)
    assert after > before + 0.1


def test_shrink_and_perturb_scales_every_weight_and_draws_seeded_noise(method_env):
    from classification_models.training import shrink_and_perturb
    from retraining.loop import clone_classifier

    _, clf, _ = method_env
    before = [np.asarray(v.numpy()) for v in clf.model.trainable_weights]
    halved = clone_classifier(clf)
    shrink_and_perturb(halved.model, shrink=0.5, noise=0.0, seed=0)
    for w, v in zip(before, halved.model.trainable_weights):
        np.testing.assert_array_equal(np.asarray(v.numpy()), (0.5 * w).astype(w.dtype))
    a, b = clone_classifier(clf), clone_classifier(clf)
    for c in (a, b):
        shrink_and_perturb(c.model, shrink=1.0, noise=0.1, seed=3)
    kernel = max(range(len(before)), key=lambda i: before[i].size)  # the largest kernel: a stable spread
    noise = np.asarray(a.model.trainable_weights[kernel].numpy()) - before[kernel]
    np.testing.assert_array_equal(noise, np.asarray(b.model.trainable_weights[kernel].numpy()) - before[kernel])
    assert np.std(noise) == pytest.approx(0.1 * before[kernel].std(), rel=0.1)


def test_swap_shrinks_after_the_propagation_used_the_base_weights(method_env):
    from tests.fixtures_retrain import make_method_env

    plain = ready_method("swap", method_env)
    # a fresh environment: the module's one caches its propagation, which would hide the order
    shrunk = ready_method("swap", make_method_env(), {"shrink": 0.5})
    assert shrunk.prop is not plain.prop
    assert list(shrunk.prop.filters) == list(plain.prop.filters) and len(plain.prop.filters) == 2
    np.testing.assert_array_equal(shrunk.prop.marked, plain.prop.marked)
    w_plain = [np.asarray(v.numpy()) for v in plain.clf.model.trainable_weights]
    w_shrunk = [np.asarray(v.numpy()) for v in shrunk.clf.model.trainable_weights]
    assert all(np.array_equal(s, (0.5 * p).astype(p.dtype)) for s, p in zip(w_shrunk, w_plain))


# ----------------------------------------------------------------------------- PASA's parameters, named once
def test_swap_reuses_pasa_s_parameters_and_old_keys_name_the_new_one(method_env):
    import dataclasses

    from retraining.methods.pasa import PASAParams, PASAWeight
    from retraining.methods.swap import SwapParams

    assert issubclass(PASAParams, PASAWeight)
    assert {f.name: f.type for f in dataclasses.fields(SwapParams)}["pasa"] == "PASAWeight"
    assert get_method("swap", {"penalty": "pasa", "pasa": {"base": 0.3}}).params.pasa == PASAWeight(base=0.3)
    assert get_method("pasa", {"base": 0.3}).params.threshold == PASAWeight().threshold
    with pytest.raises(UserError, match=r"pasa\.base.*0"):
        get_method("swap", {"pasa": {"base": 0.0}})
    for old, new in (("pasa_base", '"pasa": {"base": ...}'), ("pasa_threshold", '"pasa": {"threshold": ...}')):
        with pytest.raises(UserError) as exc:
            get_method("swap", {"penalty": "pasa", old: 0.5})
        assert str(exc.value).startswith(f"method 'swap' params: '{old}' is now {new}")
    # swap's PASA term is PASA's: same weight, same batch -> same penalty
    swap = ready_method("swap", method_env, {"penalty": "pasa", "pasa": {"base": 0.3, "threshold": 0.9}})
    pasa = ready_method("pasa", method_env, {"base": 0.3, "threshold": 0.9})
    batch = to_tensors(swap.sample_batch(np.random.default_rng(0)))
    assert float(swap.loss(swap.clf, batch)[1]["penalty"]) == pytest.approx(float(pasa.loss(swap.clf, batch)[1]["penalty"]))
