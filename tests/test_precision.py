"""Mixed precision on the CPU: the policy is set, CAMs match the float32 model's within
float16 tolerance, and training steps with the scaled loss give finite losses and
weights (a GPU is where it pays; the code path is the same)."""
from __future__ import annotations

import numpy as np
import pytest


def test_mixed_precision_policy_cams_and_steps():
    import tensorflow as tf

    from classification_models.precision import is_mixed, with_precision
    from retraining.loop import clone_classifier, make_optimizer, to_tensors
    from retraining.methods import get_method
    from tests.fixtures_retrain import make_method_env
    from tests.test_fast_path import make_resnet
    from tests.test_small_cues import make_stamped

    clf = make_resnet(nested=True)
    mixed = with_precision(clf, "mixed_float16")
    assert with_precision(clf, "float32") is clf and not is_mixed(clf.model) and is_mixed(mixed.model)
    policies = {l.name: l.dtype_policy.name for l in mixed.model.get_layer("tinyres").layers[1:]}
    assert set(policies.values()) == {"mixed_float16"}
    assert mixed.parts.dense.dtype_policy.name == "float32"
    images = make_stamped().arrays("train").images[:8]
    ref, got = clf.cams(images, classes=0), mixed.cams(images, classes=0)
    assert got.cams.dtype == np.float32 and got.probs.dtype == np.float32
    scale = float(np.abs(ref.cams).max())
    np.testing.assert_allclose(got.cams, ref.cams, atol=0.02 * scale)
    np.testing.assert_allclose(got.probs, ref.probs, atol=0.01)
    with pytest.raises(ValueError, match="valid: float32, mixed_float16"):
        with_precision(clf, "bfloat8")

    _, base, data = make_method_env()
    m = get_method("pasa", {})
    m.setup(clf=clone_classifier(base, precision="mixed_float16"), data=data, batch_random=6, batch_selected=3, seed=0)
    before = [w.copy() for w in m.clf.model.get_weights()]
    step = m.clf.make_train_step(m.loss, make_optimizer("adam", 1e-3))
    rng = np.random.default_rng(0)
    losses = [float(step(to_tensors(m.sample_batch(rng)))[0]) for _ in range(4)]
    assert all(np.isfinite(losses)) and losses[0] > 0
    after = m.clf.model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert all(w.dtype == np.float32 for w in after if w.dtype.kind == "f")  # float32 variables
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # the global policy is left alone
