"""Run outputs: CAM arrays and figures, the Markdown comparison table of a summary.

Functions compute values/images; ``save_*`` write them atomically.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from common.images import write_mask
from common.run_files import CueChange, MethodSummary, RetrainSummary
from datasets.selection import SelectionItem, save_selection
from plot_utils.cam_figures import cam_grid_figure, cam_strip_figure, changed_figure
from plot_utils.figures import save_figure
from plot_utils.table_format import markdown_table


def cam_arrays(mset, before: dict, after: dict) -> dict[str, np.ndarray]:
    """The before/after CAM record of a masked image set, as stored in ``cams.npz``.

    Args:
        mset: the ``MaskedSet`` (indices, images, masks, labels).
        before, after: ``retraining.metrics.explain`` of the base and the
            retrained model on it.

    Returns:
        ``indices`` [S] str, ``images`` uint8 [S,H,W,C], ``masks`` uint8 [S,H,W],
        ``labels`` [S], ``cams_before``/``cams_after`` float32 [S,H,W] (true class, image
        size), ``probs_before``/``probs_after`` [S,C].
    """
    hw = tuple(mset.images.shape[1:3]) if len(mset) else (0, 0)
    empty = np.zeros((0,) + hw, np.float32)
    return {"indices": np.asarray(mset.indices, dtype=str), "images": np.asarray(mset.images, np.uint8),
            "masks": np.asarray(mset.masks, np.uint8), "labels": np.asarray(mset.labels, np.int64),
            "cams_before": empty if before["cams"] is None else np.asarray(before["cams"], np.float32),
            "cams_after": empty if after["cams"] is None else np.asarray(after["cams"], np.float32),
            "probs_before": np.asarray(before["probs"], np.float32), "probs_after": np.asarray(after["probs"], np.float32)}


def save_iterations_figure(path: str | Path, cams: dict, along: dict, *, title: str, class_names=None) -> Path:
    """``cams_iterations.png``: each selected image's true-class CAM at the checks of
    the run (``plot_utils.cam_figures.cam_strip_figure``)."""
    path = Path(path)
    fig = cam_strip_figure(cams, along, title=title, class_names=class_names)
    return save_figure(fig, path.parent, path.stem, formats=("png",), dpi=110)[0]


def save_changed_figure(path: str | Path, test, changes: dict, *, before, after, title: str, class_names=None) -> Path:
    """``changed_test.png``: test images the retraining fixed and broke
    (``plot_utils.cam_figures.changed_figure``)."""
    path = Path(path)
    fig = changed_figure(images=test.images, labels=test.labels, indices=test.indices, changes=changes,
                         before=before, after=after, title=title, class_names=class_names)
    return save_figure(fig, path.parent, path.stem, formats=("png",), dpi=110)[0]


def save_cam_figure(path: str | Path, cams: dict, *, title: str, class_names=None) -> Path:
    """``cams_selected.png`` / ``cams_heldout.png``: the titled grid of
    ``plot_utils.cam_figures.cam_grid_figure``."""
    path = Path(path)
    fig = cam_grid_figure(cams, title=title, class_names=class_names)
    return save_figure(fig, path.parent, path.stem, formats=("png",), dpi=110)[0]


def save_method_figures(folder: Path, label: str, cam_sets: dict, *, class_names=None, test=None,
                        test_changes: dict | None = None, before=None, after=None) -> None:
    """A method's figures in ``folder``: ``cams_selected.png`` / ``cams_heldout.png``
    (before → after), ``cams_iterations.png`` (the selected images' CAM along the run)
    and ``changed_test.png`` (the test images whose prediction changed; ``test`` with
    its shown images fetched, ``before``/``after`` the test predictions)."""
    for where, what in (("selected", "selected (masked training) images"), ("heldout", "held-out masked test images")):
        if len(cam_sets[where]["labels"]):
            save_cam_figure(folder / f"cams_{where}.png", cam_sets[where], class_names=class_names,
                            title=f"{label}: true-class CAMs of the {what}, before → after")
    if "along" in cam_sets:
        save_iterations_figure(folder / "cams_iterations.png", cam_sets["selected"], cam_sets["along"],
                               class_names=class_names, title=f"{label}: true-class CAM of the selected images along the run")
    if test_changes is not None and (test_changes["fixed"] or test_changes["broken"]):
        save_changed_figure(folder / "changed_test.png", test, test_changes, before=before, after=after,
                            class_names=class_names, title=f"{label}: test images whose prediction changed")


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def _cue_cell(cue: CueChange | None) -> str:
    if cue is None:
        return "–"
    return f"{_fmt(cue.before.flip_rate, 2)} → {_fmt(cue.after.flip_rate, 2)}"


def _iterations_cell(m: MethodSummary) -> str:
    """``run (kept)``: steps taken and, with early stopping, the iteration whose weights
    the model ends with (0: the base model's)."""
    best = m.iterations.best
    return f"{m.iterations.run}" + (f" ({best.iteration})" if best is not None and best.restored else "")


def comparison_table(summary: RetrainSummary, extras: dict, *, propagated: dict | None = None) -> str:
    """Markdown table: accuracy per split, Δ test vs base, worst-group accuracy, cue flip
    rate on test images before → after, in-mask energy of the true class (selected,
    held-out) and of the predicted class (held-out) before → after, mean selected
    true-class probability before → after, step time and its ratio to ``continued`` (when
    run); then the verdict line (``verdict``).

    Args:
        summary: the run's summary.
        extras: ``{method: {"p_true_before", "p_true_after"}}`` (methods without selected images absent).
        propagated: ``run.json``'s ``propagated`` (its mask quality names a likely cause
            when feedback did not help), or None.

    Returns:
        The Markdown text.
    """
    base = summary.base.accuracy
    cont = summary.methods["continued"].step_seconds if "continued" in summary.methods else None
    rows = [["base", _fmt(base.train), _fmt(base.val), _fmt(base.test), "", _fmt(base.worst_group),
             _fmt(None if summary.base.cue is None else summary.base.cue.flip_rate, 2), "", "", "", "", "", "", ""]]
    for key, m in summary.methods.items():
        acc = m.accuracy
        e = m.in_mask_cam_energy
        ep = m.explanation.heldout.energy_pred
        ex = extras.get(key, {})
        d = acc.test - base.test if acc.test is not None and base.test is not None else None
        ratio = m.step_seconds / cont if cont else None
        rows.append([key, _fmt(acc.train), _fmt(acc.val), _fmt(acc.test), "" if d is None else f"{d:+.3f}",
                     _fmt(acc.worst_group), _cue_cell(m.cue), f"{_fmt(e.selected.before)} → {_fmt(e.selected.after)}",
                     f"{_fmt(e.heldout.before)} → {_fmt(e.heldout.after)}", f"{_fmt(ep.before)} → {_fmt(ep.after)}",
                     f"{_fmt(ex.get('p_true_before'))} → {_fmt(ex.get('p_true_after'))}", _iterations_cell(m),
                     _fmt(m.step_seconds, 4), _fmt(ratio, 2)])
    lines = [markdown_table(["method", "train", "val", "test", "Δtest", "worst group", "cue flips (test)",
                             "energy sel.", "energy held-out", "energy pred. held-out", "p_true sel.",
                             "iterations (kept)", "step s", "× continued"], rows).rstrip()]
    warnings = reversed_cue_warnings(summary) + still_learning_warnings(summary)
    line = verdict(summary, propagated=propagated)
    return ("\n".join(lines) + "\n" + "".join(f"\n{w}\n" for w in warnings)
            + (f"\n{line}\n" if line else ""))


def reversed_cue_warnings(summary: RetrainSummary, gap: float = 0.3) -> list[str]:
    """One line per method that reads the cue *backwards*: its accuracy on the cue-swapped
    validation copy is far above its plain validation accuracy (by more than ``gap``),
    while the base's was far below. Swapping the cue region to another class's on most
    training images makes the cue anti-correlated with the label; a model can then learn
    "this background is not my class", which the swapped copy rewards and a test set with
    an independent cue does not."""
    base = summary.base.accuracy
    if base.val is None or base.val_swap is None or base.val - base.val_swap <= gap:
        return []
    out = []
    for key, m in summary.methods.items():
        acc = m.accuracy
        if acc.val is not None and acc.val_swap is not None and acc.val_swap - acc.val > gap:
            out.append(f"Warning: {key} reads the cue backwards (validation accuracy {acc.val:.3f} with the cue, "
                       f"{acc.val_swap:.3f} with it swapped to another class's): its cue-swapped training made "
                       "the cue anti-correlated with the label; do not trust its val-swap score.")
    return out


def still_learning_warnings(summary: RetrainSummary) -> list[str]:
    """One line per method that used every iteration while still learning (its training
    loss still falling, its best check among the last ones): more iterations would
    likely help (``runner.end_of_run``)."""
    return [f"Warning: {key} used all {m.iterations.max} iterations and was still learning (training loss down "
            f"{m.iterations.ce_drop:.2f} over the last iterations, best checkpoint at "
            f"{m.iterations.best.iteration if m.iterations.best else m.iterations.run}): raise iterations."
            for key, m in summary.methods.items() if m.iterations.still_learning]


#: propagated masks covering less of the cue than this are named as the likely cause
LOW_RECALL = 0.8
#: a flip rate above this share of the base's counts as unchanged
FLIPS_UNCHANGED = 0.8


def _mask_recall(propagated: dict | None) -> float | None:
    """The propagated masks' recall: on the held-out masked images (the honest check),
    else against the data set's ground truth on the training images; None unknown."""
    for key in ("heldout_quality", "quality"):
        q = (propagated or {}).get(key) or {}
        if q.get("recall") is not None:
            return float(q["recall"])
    return None


def failure_causes(summary: RetrainSummary, best: str, *, propagated: dict | None = None) -> list[tuple[str, str]]:
    """``(likely cause, what to try)`` pairs read from the run's own numbers when its best
    feedback method ``best`` did not beat the best no-feedback baseline: low propagation
    recall, cue flips unchanged, still learning at the budget, a base that barely used the
    marked region; one generic pair when none of these shows."""
    m = summary.methods[best]
    out = []
    recall = _mask_recall(propagated)
    if recall is not None and recall < LOW_RECALL:
        out.append((f"the propagated masks cover only {100 * recall:.0f} % of the marked cue",
                    'mask more images or raise "propagation": {"min_recall": ...}'))
    base_cue = summary.base.cue
    if m.cue is not None and base_cue is not None and base_cue.flip_rate > 0.05:
        if m.cue.after.flip_rate >= FLIPS_UNCHANGED * m.cue.before.flip_rate:
            out.append((f"the cue still drives its predictions (cue flips {m.cue.before.flip_rate:.2f} → "
                        f"{m.cue.after.flip_rate:.2f})", "check that the masks cover the whole cue; mask more images"))
    elif base_cue is not None:
        out.append((f"the base barely reads the marked region (cue flips {base_cue.flip_rate:.2f})",
                    "check that the masks mark what the base relies on"))
    if m.iterations.still_learning:
        out.append((f"still learning at the budget ({m.iterations.max} iterations)", "raise iterations"))
    return out or [("no cause shows in the run's numbers", "more masked images, or more iterations")]


def verdict(summary: RetrainSummary, *, propagated: dict | None = None) -> str | None:
    """One line: the best feedback method (by test accuracy), its Δ over the best
    no-feedback baseline (without one: over the base, saying that no baseline ran), the cue
    flip rate and the worst-group accuracy before → after; None without a feedback method. When the best feedback
    method does not beat the baseline the line says so first, with the likely causes
    (``failure_causes``; ``propagated``: ``run.json``'s) and what to try."""
    methods = summary.methods

    def test(k):
        return methods[k].accuracy.test

    fb = [k for k, m in methods.items() if m.role == "feedback" and test(k) is not None]
    nofb = [k for k, m in methods.items() if m.role == "baseline" and test(k) is not None]
    if not fb:
        return None
    best = max(fb, key=test)
    cue = methods[best].cue
    flips = (f"; cue flip rate on test {cue.before.flip_rate:.2f} → {cue.after.flip_rate:.2f}"
             if cue is not None else "")
    wg_before, wg_after = summary.base.accuracy.worst_group, methods[best].accuracy.worst_group
    groups = (f"; worst-group accuracy {wg_before:.3f} → {wg_after:.3f}"
              if wg_before is not None and wg_after is not None else "")
    base_test = summary.base.accuracy.test
    if not nofb:  # only feedback methods ran: the change from the base, and what it cannot tell
        return (f"Verdict: best feedback method {best} reaches test {test(best):.3f} "
                f"({test(best) - (base_test or 0.0):+.3f} vs the base, {float('nan') if base_test is None else base_test:.3f}; "
                f"no no-feedback baseline ran, so what the masks add beyond more training is not measured: add "
                f"{{\"name\": \"continued\"}}){flips}{groups}.")
    ref = max(nofb, key=test)
    delta = test(best) - test(ref)
    head = "Verdict: "
    if delta <= 0:
        causes = failure_causes(summary, best, propagated=propagated)
        head = (f"Verdict: feedback did NOT beat the best no-feedback baseline {ref} ({test(ref):.3f}); likely cause: "
                f"{'; '.join(c for c, _ in causes)}; try: {'; '.join(t for _, t in causes)}. ")
    return (f"{head}best feedback method {best} reaches test {test(best):.3f} "
            f"({delta:+.3f} vs the best no-feedback baseline {ref}, {test(ref):.3f}; "
            f"base {float('nan') if base_test is None else base_test:.3f}){flips}{groups}.")


def write_propagated(folder: Path, data, *, train_result: str, sync: bool = True) -> Path:
    """The propagated masks as a selection of their own (same format; every item's note
    says ``propagated``), so the mask tool and ``select_tool.auto`` can offer them. With
    ``data.stream`` these are the images of the propagation's bank (``Propagated``).
    ``sync=False`` inside a run's transaction folder (``common.io.atomic_write_bytes``)."""
    prop = data._propagated
    items = []
    note = f"propagated (filters {', '.join(map(str, prop.filters.tolist()))})"
    for index, label, mask in zip(prop.indices, prop.labels, prop.masks):
        rel = f"masks/{index}.png"
        write_mask(folder / rel, mask, sync=sync)
        items.append(SelectionItem(str(index), rel, int(label), note))
    return save_selection(folder / "selection.json", train_result, items)
