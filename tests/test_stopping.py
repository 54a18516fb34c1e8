"""Early stopping decided in one place (retraining.stopping): the rule's fallbacks and the stop."""
from __future__ import annotations

import logging

from retraining.config import StopSpec
from retraining.stopping import EarlyStop, stopping_rule


def test_the_rule_falls_back_from_val_swap_to_val_to_none_and_says_why(caplog):
    spec = StopSpec()
    assert stopping_rule(spec, has_val=True, has_val_swap=True) == spec
    with caplog.at_level(logging.WARNING, logger="retraining.stopping"):
        val = stopping_rule(spec, has_val=True, has_val_swap=False, why_no_val_swap="counterfactual_val is false")
        assert stopping_rule(spec, has_val=False, has_val_swap=False, why_no_val_swap="no validation split") is None
    assert val == StopSpec(on="val") and val.patience == spec.patience and val.min_ce_drop == spec.min_ce_drop
    assert [r.getMessage() for r in caplog.records] == [
        "stopping.on 'val_swap': no cue-swapped validation copy (counterfactual_val is false); early stopping "
        "falls back to 'val'",
        "stopping.on 'val_swap': no cue-swapped validation copy (no validation split); early stopping falls back to none"]
    # a rule the user chose is kept; "none" never stops
    assert stopping_rule(StopSpec(on="val"), has_val=True, has_val_swap=False) == StopSpec(on="val")
    assert stopping_rule(StopSpec(on="none"), has_val=True, has_val_swap=True) is None


def test_early_stop_waits_for_patience_start_from_and_a_flat_training_loss():
    early = EarlyStop(spec=StopSpec(on="val", patience=4, min_delta=0.01, start_from=8, min_ce_drop=0.05), score=0.5)
    assert not early.improved(2, 0.505)  # within min_delta
    assert early.improved(4, 0.6) and (early.iteration, early.score) == (4, 0.6)
    flat = [1.0] * 12
    assert not early.should_stop(6, flat)  # 2 iterations without improvement < patience
    assert not early.should_stop(7, flat)  # patience reached, but before start_from
    assert early.should_stop(8, flat)
    falling = [2.0] * 6 + [1.0, 1.0]  # last 4 iterations: halves 2.0 and 1.0
    assert not early.should_stop(8, falling)  # the training loss still falls
