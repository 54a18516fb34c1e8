"""The efficacy report's pure part: aggregation over seed records and the Markdown
(``benchmarks.efficacy`` runs the seeds and writes the records; this module only reads
them). Recovered gap per seed = (method − base) / (clean − base); tables give
mean ± sample std (ddof 1) over seeds."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import spearmanr

from plot_utils.table_format import markdown_table

NOTES_BEGIN, NOTES_END = "<!-- notes:begin -->", "<!-- notes:end -->"


def mean_std(values) -> tuple[float, float] | None:
    """Mean and sample standard deviation (ddof 1; 0 for one value) of the finite values,
    or None when there are none."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if not len(v):
        return None
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def rank_correlation(methods: dict) -> float | None:
    """Spearman ρ of ``val_swap`` with test accuracy across a run's methods (None: < 3
    methods with both, or a constant column)."""
    pairs = [(m["val_swap"], m["test"]) for m in methods.values()
             if m.get("val_swap") is not None and m.get("test") is not None]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None
    return float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic)


def recovered_share(*, method: float, base: float, clean: float) -> float | None:
    """``(method − base) / (clean − base)``; None when the gap is not positive."""
    gap = clean - base
    return None if gap <= 0 else (method - base) / gap


def aggregate(records: list[dict], methods: Sequence[str]) -> dict:
    """Per-method statistics over seed records (see ``make_record`` for the fields).

    Returns:
        ``{"seeds": [...], "base": ms, "clean": ms, "clean_own": ms, "methods": {m: {"test": ms,
        "recovered": ms, "vs_continued": ms (test − continued's test, per seed), "energy_selected": (before ms, after ms), "energy_heldout": (...),
        "step_ratio": ms}}}`` with ``ms`` = ``(mean, std)`` or None.
    """
    out = {"seeds": [r["seed"] for r in records],
           "base": mean_std(r["base_test"] for r in records),
           "clean": mean_std(r["clean_test"] for r in records),
           "clean_own": mean_std(r.get("clean_own_test") for r in records),
           "methods": {}}
    for m in methods:
        rs = [r for r in records if m in r["methods"]]
        if not rs:
            continue
        rec = [recovered_share(method=r["methods"][m]["test"], base=r["base_test"], clean=r["clean_test"]) for r in rs]
        cont = [r["methods"].get("continued", {}).get("step_seconds") for r in rs]
        ratio = [r["methods"][m]["step_seconds"] / c if c else None for r, c in zip(rs, cont)]
        delta = [r["methods"][m]["test"] - r["methods"]["continued"]["test"] if "continued" in r["methods"] else None
                 for r in rs]
        out["methods"][m] = {
            "n": len(rs),
            "vs_continued": mean_std(delta),
            "test": mean_std(r["methods"][m]["test"] for r in rs),
            "recovered": mean_std(rec),
            "energy_selected": tuple(mean_std(r["methods"][m]["energy"]["selected"][k] for r in rs) for k in ("before", "after")),
            "energy_heldout": tuple(mean_std(r["methods"][m]["energy"]["heldout"][k] for r in rs) for k in ("before", "after")),
            "step_ratio": mean_std(ratio),
        }
    return out


def fmt_ms(ms, pct: bool = False, digits: int = 3) -> str:
    """``mean ± std`` (as percentages when ``pct``), ``–`` for None."""
    if ms is None:
        return "–"
    m, s = ms
    if pct:
        return f"{100 * m:.0f} % ± {100 * s:.0f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def dataset_section(name: str, records: list[dict], methods: Sequence[str], pending_seeds: Sequence[int]) -> str:
    """Markdown section of one data set's main table."""
    lines = [f"### {name}", ""]
    if not records:
        return "\n".join(lines + [f"**pending** — no finished seed yet (seeds {', '.join(map(str, pending_seeds))}).", ""])
    agg = aggregate(records, methods)
    r0 = records[0]
    lines += [f"Seeds {', '.join(map(str, agg['seeds']))}"
              + (f" (pending: {', '.join(map(str, pending_seeds))})" if pending_seeds else "")
              + f"; {r0['n_masked']} masked training images of {r0['n_train']} "
              f"(**{100 * r0['share_masked']:.1f} %**; misclassified by the base model among them: "
              f"{', '.join(str(r['n_masked_misclassified']) for r in records)} per seed); "
              f"{r0['n_heldout']} held-out masked test images; {r0['iterations']} iterations of "
              f"{r0['batch']['random']} random + {r0['batch']['selected']} masked images; lr {r0['lr']:g}; "
              f"mask → grid: {r0['mask_resize']['mode']}; grid {'×'.join(map(str, r0['grid']))}.", ""]
    rows = [["base", fmt_ms(agg["base"]), "0 %", "", "", "", ""],
            ["clean upper bound (on the base test split)", fmt_ms(agg["clean"]), "100 %", "", "", "", ""],
            ["clean upper bound (own clean test split)", fmt_ms(agg["clean_own"]), "", "", "", "", ""]]
    for m in methods:
        s = agg["methods"].get(m)
        if s is None:
            rows.append([m, "pending", "", "", "", "", ""])
            continue
        es, eh = s["energy_selected"], s["energy_heldout"]
        rows.append([m, fmt_ms(s["test"]), fmt_ms(s["recovered"], pct=True), fmt_ms(s["vs_continued"]),
                     f"{fmt_ms(es[0])} → {fmt_ms(es[1])}", f"{fmt_ms(eh[0])} → {fmt_ms(eh[1])}",
                     fmt_ms(s["step_ratio"], digits=2)])
    lines.append(markdown_table(["model", "test acc (mean ± std)", "recovered gap", "Δ test vs continued",
                                 "in-mask energy, selected (before → after)",
                                 "in-mask energy, held-out (before → after)", "step × continued"], rows).rstrip())
    pasa = agg["methods"].get("pasa")
    if pasa and pasa["recovered"]:
        got = pasa["recovered"][0]
        cont = agg["methods"].get("continued")
        also = (f" Plain continued training alone recovers {fmt_ms(cont['recovered'], pct=True)}; PASA's "
                f"test accuracy minus continued's: {fmt_ms(pasa['vs_continued'])}."
                if cont and cont["recovered"] else "")
        lines += ["", f"Goal (PASA, ≤ 2 % masked, recovers ≥ 80 % of the gap): **{100 * got:.0f} % — "
                  f"{'met' if got >= 0.8 and r0['share_masked'] <= 0.02 + 1e-9 else 'not met'}**.{also}"]
    return "\n".join(lines + [""])


def investigations_table(records_by_tag: dict[str, list[dict]], methods: Sequence[str]) -> str:
    """One row per (data set, tag): recovered gap share per method, mean ± std over seeds."""
    rows = []
    for (ds, tag), recs in sorted(records_by_tag.items()):
        agg = aggregate(recs, methods)
        cells = []
        for m in methods:
            s = agg["methods"].get(m)
            cells.append("–" if s is None else f"{fmt_ms(s['test'])} / {fmt_ms(s['recovered'], pct=True)}")
        rows.append([ds, tag, ",".join(map(str, agg["seeds"])), fmt_ms(agg["base"]), fmt_ms(agg["clean"]), *cells])
    return markdown_table(["data set", "variant", "seeds", "base test", "clean test",
                           *(f"{m} test / recovered" for m in methods)], rows)


def keep_notes(previous: str | None) -> str:
    """The notes block of a previous report (markers included), or an empty block."""
    if previous and NOTES_BEGIN in previous and NOTES_END in previous:
        a = previous.index(NOTES_BEGIN)
        return previous[a: previous.index(NOTES_END) + len(NOTES_END)]
    return f"{NOTES_BEGIN}\n{NOTES_END}"


def render_report(*, sections: list[str], investigations: str | None, notes: str, command: str) -> str:
    parts = ["# Benchmarks: efficacy of retraining from masks", "",
             f"Generated by `{command}` (benchmarks/efficacy.py) from the stored run records; "
             "do not edit the tables by hand (the notes block is kept on regeneration).", "",
             "Test accuracy after retraining, mean ± sample std over seeds. *Recovered gap* = "
             "(method − base) / (clean − base) per seed, then mean ± std. In-mask CAM energy = "
             "Σ ReLU(CAM_true)·M / Σ ReLU(CAM_true) (lower: less evidence in the masked region). "
             "Step × continued = median optimiser-step time relative to plain continued training in the same run.", "",
             "## Main results", ""] + sections
    if investigations:
        parts += ["## Investigations (variants; same seeds and selections)", "", investigations]
    parts += ["## Findings", "", notes, ""]
    return "\n".join(parts)


