"""One method's entry of a retraining run's ``summary.json`` (``common.run_files.MethodSummary``)."""
from __future__ import annotations

from common.run_files import (Accuracy, BeforeAfter, ChangedCounts, CueChange, CueScores, Energy, Explanation,
                              ExplanationScores, MethodSummary, Probabilities)
from retraining.config import RetrainConfig
from retraining.data import MaskedSet
from retraining.loop import end_of_run


def method_role(method) -> str:
    """``feedback`` (reads the expert's masks), ``control`` (a mask method run with a
    ``mask_variant``: wrong or damaged masks) or ``baseline`` (uses no masks)."""
    if not method.uses_masks:
        return "baseline"
    return "feedback" if method.params.mask_variant == "none" else "control"


def method_summary(m, cfg: RetrainConfig, res, *, ev: dict, val_swap, selected: MaskedSet, explained,
                   cue: tuple, test_changes: dict | None, worst_group: float | None = None) -> MethodSummary:
    """One method's entry of ``summary.json``. ``explained``: ``(where, before, after)`` of
    ``metrics.explain`` for the selected and the held-out images; ``cue``: the reliance
    scores ``(before, after)``; ``worst_group``: its worst-group accuracy (``retraining.groups``)."""
    (_, sel_before, sel_after), (_, held_before, held_after) = explained
    return MethodSummary(
        accuracy=Accuracy(**ev["accuracy"], val_swap=val_swap, worst_group=worst_group),
        report=ev["report"],
        in_mask_cam_energy=Energy(
            selected=BeforeAfter(before=sel_before["mean_energy"], after=sel_after["mean_energy"]),
            heldout=BeforeAfter(before=held_before["mean_energy"], after=held_after["mean_energy"])),
        explanation=Explanation(**{
            where: ExplanationScores(**{key: BeforeAfter(before=b[f"mean_{key}"], after=a[f"mean_{key}"])
                                        for key in ("energy_pred", "wr")})
            for where, b, a in explained}),
        cue=None if cue[0] is None else CueChange(before=CueScores(**cue[0]), after=CueScores(**cue[1])),
        role=method_role(m),
        selected_probabilities={
            idx: Probabilities(before=sel_before["probs"][j].tolist(), after=sel_after["probs"][j].tolist())
            for j, idx in enumerate(selected.indices)},
        step_seconds=res.step_seconds,
        iterations=end_of_run(res, iterations=cfg.iterations, window=cfg.stopping.patience,
                              min_drop=cfg.stopping.min_ce_drop),
        changed_test=None if test_changes is None else ChangedCounts(**{k: len(v) for k, v in test_changes.items()}),
    )
