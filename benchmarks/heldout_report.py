"""The held-out report: leave-one-family-out tables, the goal rows and the accuracy-against-
iterations figure from the records of ``benchmarks.heldout`` (pure aggregation; one writer).

For each family F and budget (100, 300 iterations) the lever with the best mean recovered
gap on the *other* families is chosen and reported on F (held-out rows); the lever chosen
on every family, F included, is reported apart (in-sample rows).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from common.io import read_json, replace_section
from benchmarks.efficacy_report import mean_std, rank_correlation
from benchmarks.heldout import ITERATIONS, LEVERS, TAG
from benchmarks.suite_report import MIN_GAP, fmt
from datasets import shortcut_suite
from plot_utils.figures import save_figure
from plot_utils.table_format import markdown_table
from retraining import suite_configs

BEGIN, END = "<!-- heldout:begin -->", "<!-- heldout:end -->"
BUDGETS = (100, ITERATIONS)
#: images per retraining iteration (the suite's batch: random + selected)
IMAGES_PER_ITERATION = sum(suite_configs.suite_methods().retrain["batch"].values())
#: the learning rate of the default `swap` (the suite's retraining config)
DEFAULT_LR = suite_configs.suite_methods().retrain["learning_rate"]


def at(along: list[dict] | None, iteration: int, key: str = "test") -> float | None:
    """The tracked ``key`` at ``iteration`` (None when not tracked there)."""
    for row in along or []:
        if row["iteration"] == iteration:
            return row.get(key)
    return None


def recovered(record: dict, along, iteration: int) -> float | None:
    """(test at ``iteration`` − base) / (oracle − base); None for a gap under ``MIN_GAP``."""
    gap = record["oracle_test"] - record["base_test"]
    acc = at(along, iteration)
    return None if acc is None or gap < MIN_GAP else (acc - record["base_test"]) / gap


def load(root: Path) -> list[dict]:
    """Main records, each with ``levers``: ``{lever: swap's along rows}``."""
    out = []
    for p in sorted(Path(root).glob(f"*/seed*/record_{TAG}.json")):
        rec = read_json(p)
        rec["levers"] = {"default": rec["methods"]["swap"].get("along")}
        for lever in LEVERS:
            lp = p.parent / f"record_{TAG}-{lever}.json"
            if lp.exists():
                rec["levers"][lever] = read_json(lp)["methods"]["swap"].get("along")
        rec["oracle_curve"] = oracle_curve(Path(root) / shortcut_suite.oracle_name(rec["set"]) / f"seed{rec['seed']}"
                                           / "oracle")
        out.append(rec)
    return out


def oracle_curve(folder: Path) -> list[tuple[int, float]] | None:
    """``[(training images seen, validation accuracy)]`` per epoch of the oracle's own
    training from scratch (its ``history.jsonl``; batch size from its ``config.json``):
    how fast the object itself is learned, to set beside a retraining that must learn it."""
    history, config = folder / "history.jsonl", folder / "config.json"
    if not history.exists() or not config.exists():
        return None
    batch = int(read_json(config)["train"]["batch_size"])
    rows = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(int(r["epoch"] * r["steps"] * batch), float(r["val_accuracy"])) for r in rows
            if r.get("val_accuracy") is not None]


def lever_scores(records: list[dict], budget: int) -> dict[str, dict[str, float]]:
    """``{lever: {family: mean recovered gap at budget}}`` (families with a number only)."""
    out: dict[str, dict[str, float]] = {}
    for lever in LEVERS:
        for fam in sorted({r["family"] for r in records}):
            vals = [recovered(r, r["levers"].get(lever), budget) for r in records if r["family"] == fam]
            ms = mean_std(vals)
            if ms is not None:
                out.setdefault(lever, {})[fam] = ms[0]
    return out


def choose(scores: dict[str, dict[str, float]], *, leave_out: str | None) -> str | None:
    """The lever with the best mean over families (``leave_out`` excluded); levers missing
    a family are not candidates."""
    fams = {f for s in scores.values() for f in s if f != leave_out}
    cands = {lv: np.mean([s[f] for f in fams]) for lv, s in scores.items() if fams and fams <= set(s)}
    return max(cands, key=cands.get) if cands else None


def family_rows(records: list[dict], *, held_out: bool) -> list[list[str]]:
    """One row per family: the lever chosen (on the others, or on all), its recovered gap
    and worst-group accuracy at each budget, the default's, the best no-feedback's."""
    rows = []
    scores = {b: lever_scores(records, b) for b in BUDGETS}
    for fam in sorted({r["family"] for r in records}):
        recs = [r for r in records if r["family"] == fam]
        cells = [fam, ", ".join(sorted({r["regime"] for r in recs})), str(len(recs))]
        for b in BUDGETS:
            lever = choose(scores[b], leave_out=fam if held_out else None)
            cells += [lever or "–", fmt(mean_std(recovered(r, r["levers"].get(lever), b) for r in recs), pct=True)]
        best_nofb = [max((recovered(r, m.get("along"), ITERATIONS) for m in r["methods"].values()
                          if m["role"] == "baseline" and recovered(r, m.get("along"), ITERATIONS) is not None),
                         default=None) for r in recs]
        lever = choose(scores[ITERATIONS], leave_out=fam if held_out else None)
        wg = [(at(r["levers"].get(lever), ITERATIONS, "worst_group"), r.get("oracle_worst_group")) for r in recs]
        cells += [fmt(mean_std(recovered(r, r["levers"]["default"], b) for r in recs), pct=True) for b in BUDGETS]
        cells += [fmt(mean_std(best_nofb), pct=True),
                  f"{fmt(mean_std(r['base_worst_group'] for r in recs), digits=2)} → "
                  f"{fmt(mean_std(w for w, _ in wg), digits=2)} (oracle {fmt(mean_std(o for _, o in wg), digits=2)})"]
        rows.append(cells)
    return rows


def goal_lines(records: list[dict]) -> list[str]:
    """The issue's goals, each with its measured number on the held-out rows."""
    scores = {b: lever_scores(records, b) for b in BUDGETS}
    fams = sorted({r["family"] for r in records})
    held = {b: {f: mean_std(recovered(r, r["levers"].get(choose(scores[b], leave_out=f)), b)
                            for r in records if r["family"] == f) for f in fams} for b in BUDGETS}
    out = []
    for b, goal in ((ITERATIONS, 0.8), (100, 0.6)):
        got = {f: v[0] for f, v in held[b].items() if v is not None}
        if got:
            worst = min(got, key=got.get)
            out.append(f"- ≥ {100 * goal:.0f} % of the gap within {b} iterations on every held-out family: worst "
                       f"{worst} {100 * got[worst]:.0f} %, mean {100 * np.mean(list(got.values())):.0f} % — "
                       f"{'met' if got[worst] >= goal else 'missed'}.")
    ratios = []
    for r in records:
        lever = choose(scores[ITERATIONS], leave_out=r["family"])
        w, o = at(r["levers"].get(lever), ITERATIONS, "worst_group"), r.get("oracle_worst_group")
        if w is not None and o:
            ratios.append(w / o)
    if ratios:
        out.append(f"- worst-group accuracy after ≥ 0.9 × the oracle's: lowest ratio {min(ratios):.2f}, mean "
                   f"{np.mean(ratios):.2f} over {len(ratios)} runs — {'met' if min(ratios) >= 0.9 else 'missed'}.")
    fooled = [r for r in records if (r["methods"]["swap_random_masks"].get("val_swap") or 0)
              > (r["methods"]["swap"].get("val_swap") or 0)]
    out.append(f"- the random-masks control above the real masks on val_swap: {len(fooled)} of {len(records)} runs"
               + (f" ({', '.join(r['set'] + ' seed ' + str(r['seed']) for r in fooled)})" if fooled else "") + ".")
    cut = [1 - r["methods"]["swap"]["cue"]["after"]["flip_rate"] / r["methods"]["swap"]["cue"]["before"]["flip_rate"]
           for r in records if (r["methods"]["swap"].get("cue") or {}).get("before", {}).get("flip_rate")]
    if cut:
        out.append(f"- cue flips fall ≥ 80 % (`swap`, {ITERATIONS} iterations): lowest {100 * min(cut):.0f} %, mean "
                   f"{100 * np.mean(cut):.0f} % — {'met' if min(cut) >= 0.8 else 'missed'}.")
    steps = [r["methods"]["swap"]["step_seconds"] / r["methods"]["continued"]["step_seconds"] for r in records]
    out.append(f"- step ≤ 1.3 × continued: `swap` {np.mean(steps):.2f} × (max {max(steps):.2f}) — "
               f"{'met' if max(steps) <= 1.3 else 'missed'}.")
    rho = [x for x in (rank_correlation(r["methods"]) for r in records) if x is not None]
    if rho:
        out.append(f"- rank correlation of val_swap with test accuracy across the run's methods (Spearman ρ): "
                   f"mean {np.mean(rho):+.2f}, lowest {min(rho):+.2f} over {len(rho)} runs.")
    return out


def accuracy_figure(records: list[dict]):
    """Test accuracy against iterations, one panel per set, a line per method and lever
    (mean over seeds); returns the matplotlib figure."""
    # the headless backend chosen before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is set

    sets = sorted({r["set"] for r in records})
    cols = min(3, len(sets))
    rows = int(np.ceil(len(sets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, sets):
        recs = [r for r in records if r["set"] == name]
        curves = {k: [m.get("along") for m in (r["methods"].get(k) for r in recs) if m and m.get("along")]
                  for k in recs[0]["methods"]}
        curves.update({f"swap {lv}": [r["levers"][lv] for r in recs if r["levers"].get(lv)]
                       for lv in LEVERS if lv != "default"})
        for label, runs in curves.items():
            if not runs:
                continue
            its = [row["iteration"] for row in runs[0]]
            acc = np.mean([[at(run, i) for i in its] for run in runs], axis=0)
            shown = f"swap (default, lr {DEFAULT_LR:g})" if label == "swap" else label
            ax.plot(its, acc, label=shown, lw=1.6 if label == "swap" else 1.0,
                    ls="--" if label.startswith("swap ") else "-")
        ax.axhline(np.mean([r["oracle_test"] for r in recs]), color="k", lw=0.8, ls=":", label="oracle")
        scratch = [r["oracle_curve"] for r in recs if r.get("oracle_curve")]
        if scratch:  # the oracle's own training, at equal images seen
            seen = np.asarray([x for x, _ in scratch[0]], float) / IMAGES_PER_ITERATION
            keep = seen <= ITERATIONS
            val = np.mean([[v for _, v in c[:len(seen)]] for c in scratch if len(c) >= len(seen)], axis=0)
            ax.plot(seen[keep], val[keep], color="0.5", lw=1.0, ls="-.",
                    label="oracle from scratch (val, equal images)")
        ax.set_title(f"{name} ({len(recs)} seed{'s' if len(recs) > 1 else ''})", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("test accuracy")
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def render(records: list[dict], *, command: str, figure: str | None) -> str:
    head = ["family", "regimes", "runs"] + [x for b in BUDGETS for x in (f"lever ({b} it)", f"recovered @{b}")]
    head += [f"default swap @{b}" for b in BUDGETS] + [f"best no-feedback @{ITERATIONS}",
                                                       f"worst group base → after @{ITERATIONS}"]
    parts = [BEGIN, "## Held-out cue families (leave one family out)", "",
             f"Generated by `{command}` (benchmarks/heldout_report.py). Each family's lever is chosen on the other "
             f"families' mean recovered gap and reported on the family left out; {ITERATIONS} iterations without early "
             "stopping, test accuracy tracked every 25; masks on 1 % of the training images from ground truth.", ""]
    if not records:
        return "\n".join(parts + ["**pending**: no finished record yet.", END])
    parts += ["### Goals (held-out rows)", ""] + goal_lines(records) + [""]
    parts += ["### Held-out rows", "", markdown_table(head, family_rows(records, held_out=True)), ""]
    parts += ["### In-sample rows (the lever chosen on every family, the reported one included)", "",
              markdown_table(head, family_rows(records, held_out=False)), ""]
    if figure:
        parts += [f"![test accuracy against iterations]({figure})", ""]
    return "\n".join(parts + [END])


def write(path: Path, *, root: Path, command: str, figure: Path | None = None) -> str:
    """Replaces the held-out section of ``path`` (appended when absent) and saves the figure."""
    records = load(root)
    rel = None
    if records and figure is not None:
        save_figure(accuracy_figure(records), figure.parent, figure.stem, formats=("png",), dpi=110)
        rel = os.path.relpath(figure.parent / f"{figure.stem}.png", path.parent)  # as the Markdown file sees it
    section = render(records, command=command, figure=rel)
    return replace_section(path, section, begin=BEGIN, end=END, title="# Held-out cue families")
