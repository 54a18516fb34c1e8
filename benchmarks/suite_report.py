"""The shortcut-suite section of ``BENCHMARKS.md`` from the stored records of
``benchmarks.efficacy_suite`` (pure aggregation + Markdown; one writer).

Per set: for every method, test accuracy, share of the base → oracle gap recovered,
Δ test vs the best no-feedback baseline of the same run, cue flip rate before → after
(test images, cue region swapped with another class's), step time relative to
``continued`` and wall time; mean ± sample std over seeds. Per regime: the mean
recovered gap of every method over the regime's sets, and the goal rows of the
recommended default.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import read_json, replace_section
from datasets.shortcut_suite import suite_sets
from benchmarks.efficacy_report import mean_std, rank_correlation
from plot_utils.table_format import markdown_table

BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
#: below this base → oracle gap (about the single-run noise of these sets) a recovered
#: share is not defined: the base does not lean on the cue enough to measure a fix
MIN_GAP = 0.03
#: the method a user runs without choosing (README, "Choosing λ, B and th")
RECOMMENDED = "swap"
REGIME_TEXT = {
    "c0.9": "train correlation 0.9, validation carries the cue like train",
    "c1.0": "train correlation 1.0 (no training image contradicts the cue), validation like train",
    "c1.0-cleanval": "train correlation 1.0, validation cue independent of the class",
}


def fmt(ms, pct: bool = False, digits: int = 3) -> str:
    if ms is None:
        return "–"
    m, s = ms
    return f"{100 * m:.0f} % ± {100 * s:.0f}" if pct else f"{m:.{digits}f} ± {s:.{digits}f}"


def per_seed(record: dict) -> dict:
    """Derived numbers of one record: per method recovered gap, Δ vs the best no-feedback
    baseline, flips before/after, step ratio."""
    base, oracle = record["base_test"], record["oracle_test"]
    gap = oracle - base
    methods = record["methods"]
    baselines = [m["test"] for m in methods.values() if m.get("role") == "baseline" and m["test"] is not None]
    best_base = max(baselines) if baselines else None
    cont = methods.get("continued", {}).get("step_seconds")
    out = {}
    for label, m in methods.items():
        cue = m.get("cue") or {}
        out[label] = {
            "test": m["test"],
            "worst_group": m.get("worst_group"),
            "recovered": (m["test"] - base) / gap if gap >= MIN_GAP else None,
            "delta": None if best_base is None else m["test"] - best_base,
            "closes": (m["test"] - best_base) / (oracle - best_base) if best_base is not None and oracle > best_base else None,
            "flip_before": (cue.get("before") or {}).get("flip_rate"),
            "flip_after": (cue.get("after") or {}).get("flip_rate"),
            "step_ratio": m["step_seconds"] / cont if cont else None,
            "seconds": m.get("seconds"),
            "iterations_run": (m.get("iterations") or {}).get("run"),
            "kept": ((m.get("iterations") or {}).get("best") or {}).get("iteration"),
        }
    return out


def load(root: Path, tag: str = "main") -> dict[str, list[dict]]:
    """``{set name: [record per seed]}``."""
    out: dict[str, list[dict]] = {}
    for p in sorted(Path(root).glob(f"*/seed*/record_{tag}.json")):
        r = read_json(p)
        out.setdefault(r["set"], []).append(r)
    return out


def _its(ds: list[dict]) -> str:
    """``run (kept)`` per seed, e.g. ``850 (650)``; ``–`` for records without early stopping."""
    cells = [f"{d['iterations_run']}" + (f" ({d['kept']})" if d.get("kept") is not None else "")
             for d in ds if d.get("iterations_run") is not None]
    return ", ".join(cells) or "–"


def set_table(name: str, records: list[dict]) -> str:
    derived = [per_seed(r) for r in records]
    r0 = records[0]
    labels = list(r0["methods"])
    gaps = [r["oracle_test"] - r["base_test"] for r in records]
    no_gap = (f" **Base → oracle gap {np.mean(gaps):.3f} < {MIN_GAP}: the base does not lean on the cue; "
              "recovered shares are not defined and the set is left out of the goal rows.**"
              if max(gaps) < MIN_GAP else "")
    lines = [f"#### {name}", "",
             f"Seeds {', '.join(str(r['seed']) for r in records)}; {r0['n_masked']} masked training images of "
             f"{r0['n_train']} ({100 * r0['share_masked']:.1f} %); "
             + (f"up to {r0['iterations']} iterations with early stopping. " if any((m.get("iterations") or {}).get("best")
                for m in r0["methods"].values()) else f"{r0['iterations']} iterations. ")
             + f"Base train/val/test {fmt(mean_std(r['base_train'] for r in records))} / "
             f"{fmt(mean_std(r['base_val'] for r in records))} / {fmt(mean_std(r['base_test'] for r in records))}; "
             f"oracle test {fmt(mean_std(r['oracle_test'] for r in records))}; base worst-group "
             f"{fmt(mean_std(r.get('base_worst_group') for r in records), digits=2)}; base cue flip rate "
             f"{fmt(mean_std((r.get('base_cue') or {}).get('flip_rate') for r in records), digits=2)}."
             + (f" Propagated masks: {fmt(mean_std((r['propagated'] or {}).get('n_images') for r in records), digits=0)} "
                f"images, precision {fmt(mean_std(((r['propagated'] or {}).get('quality') or {}).get('precision') for r in records), digits=2)}, "
                f"recall {fmt(mean_std(((r['propagated'] or {}).get('quality') or {}).get('recall') for r in records), digits=2)}."
                if any(r.get("propagated") for r in records) else "") + no_gap, ""]
    rows = []
    for label in labels:
        ds = [d[label] for d in derived if label in d]
        rows.append([label, r0["methods"][label].get("role", ""), fmt(mean_std(d["test"] for d in ds)),
                     fmt(mean_std(d["worst_group"] for d in ds), digits=2),
                     fmt(mean_std(d["recovered"] for d in ds), pct=True), fmt(mean_std(d["delta"] for d in ds)),
                     f"{fmt(mean_std(d['flip_before'] for d in ds), digits=2)} → "
                     f"{fmt(mean_std(d['flip_after'] for d in ds), digits=2)}", _its(ds),
                     fmt(mean_std(d["step_ratio"] for d in ds), digits=2), fmt(mean_std(d["seconds"] for d in ds), digits=0),
                     str(len(ds))])
    lines.append(markdown_table(["method", "role", "test acc", "worst group", "recovered gap", "Δ vs best no-feedback",
                                 "cue flips before → after", "iterations run (kept)", "step × continued",
                                 "s per method", "seeds"], rows))
    rho = [rank_correlation(r["methods"]) for r in records]
    if any(x is not None for x in rho):
        lines += ["", "Rank correlation (Spearman ρ) of the cue-swapped validation accuracy with test accuracy across "
                  "the run's methods, per seed: " + ", ".join("–" if x is None else f"{x:+.2f}" for x in rho) + "."]
    return "\n".join(lines)


def regime_summary(regime: str, by_set: dict[str, list[dict]]) -> str:
    """Mean recovered gap per method over the regime's sets (each set's seed mean first)."""
    sets = sorted(by_set)
    labels = list(by_set[sets[0]][0]["methods"])
    rows = []
    for label in labels:
        per = {s: [per_seed(r)[label] for r in by_set[s] if label in r["methods"]] for s in sets}
        rec = [mean_std(d["recovered"] for d in v) for v in per.values()]
        rec = [x[0] for x in rec if x]
        delta = [x[0] for x in (mean_std(d["delta"] for d in v) for v in per.values()) if x]
        fb = [x[0] for x in (mean_std(d["flip_before"] for d in v) for v in per.values()) if x]
        fa = [x[0] for x in (mean_std(d["flip_after"] for d in v) for v in per.values()) if x]
        rows.append([label, f"{100 * np.mean(rec):.0f} %", f"{100 * min(rec):.0f} %", f"{np.mean(delta):+.3f}",
                     f"{np.mean(fb):.2f} → {np.mean(fa):.2f}"] if rec else [label, "–", "–", "–", "–"])
    return "\n".join([f"Summary over {len(sets)} set(s) ({', '.join(sets)}): mean over sets of the per-set mean.", "",
                      markdown_table(["method", "recovered gap (mean over sets)", "worst set", "Δ vs best no-feedback",
                                      "cue flips before → after"], rows)])


def goal_rows(by_regime: dict[str, dict[str, list[dict]]], method: str = RECOMMENDED) -> str:
    """The goal check of the recommended default per regime."""
    r0 = next(r for by_set in by_regime.values() for recs in by_set.values() for r in recs)
    budget = (f"up to {r0['iterations']} iterations of 50 + 5 images with early stopping on the cue-swapped validation copy"
              if any((m.get("iterations") or {}).get("best") for m in r0["methods"].values())
              else f"{r0['iterations']} iterations of 50 + 5 images")
    rows = []
    goals = {"c0.9": 0.9, "c1.0": 0.8, "c1.0-cleanval": 0.8}
    for regime, by_set in sorted(by_regime.items()):
        ds = [per_seed(r)[method] for recs in by_set.values() for r in recs if method in r["methods"]]
        if not ds:
            continue
        per_set = [mean_std(per_seed(r)[method]["recovered"] for r in recs if method in r["methods"]) for recs in by_set.values()]
        per_set = [x[0] for x in per_set if x]
        # like the recovered gap, the other goal columns count only runs whose base leans on the cue
        measurable = [d for d in ds if d["recovered"] is not None]
        drops = [1 - d["flip_after"] / d["flip_before"] for d in measurable if d["flip_before"]]
        closes = mean_std(d["closes"] for d in measurable)
        ratio = mean_std(d["step_ratio"] for d in ds)
        rec = (f"{100 * np.mean(per_set):.0f} % / {100 * min(per_set):.0f} % over {len(per_set)} set(s)" if per_set
               else f"– (no set with a gap ≥ {MIN_GAP})")
        drop = f"{100 * np.mean(drops):.0f} %" if drops else "–"
        rows.append([regime, f"{rec} (≥ {100 * goals.get(regime, 0.9):.0f} %)", fmt(closes, pct=True), drop,
                     fmt(ratio, digits=2)])
    return "\n".join([f"Goals for the recommended default `{method}` (masks on ≤ 1 % of the training images, {budget}):",
                      "", markdown_table(["regime", "recovered gap: mean / worst set (goal)",
                                          "closes of what the best baseline leaves (goal ≥ 50 %)",
                                          "cue flip rate drop (goal ≥ 80 %)", "step × continued (goal ≤ 1.3)"], rows)])


def hard_case(root: Path, tag: str = "hard300", method: str = RECOMMENDED) -> str | None:
    """The hard-case goal: sets whose base is near chance on the cue-randomised test split
    (never learned the object), ``method`` after the fixed budget of the ``tag`` runs."""
    classes = {x.name: len(x.params.class_names) for x in suite_sets()}
    runs = [(name, rs) for (name, t), rs in sorted(load_tags(root).items())
            if t == tag and all(method in r["methods"] for r in rs)]
    rows = []
    for name, rs in runs:
        rows.append([name, fmt(mean_std(r["base_test"] for r in rs))
                     + (f" (chance {1.0 / classes[name]:.2f})" if name in classes else ""),
                     fmt(mean_std(r["oracle_test"] for r in rs)), fmt(mean_std(r["methods"][method]["test"] for r in rs)),
                     fmt(mean_std(per_seed(r)[method]["recovered"] for r in rs), pct=True), len(rs)])
    if not rows:
        return None
    r0 = runs[0][1][0]
    return "\n".join([f"The hard case: `{method}` after a fixed {r0['iterations']} iterations (no early stopping; "
                      f"goal ≥ 50 % of the gap within 300 iterations):", "",
                      markdown_table(["set", "base test", "oracle test", "after", "recovered gap", "seeds"], rows)])


def load_tags(root: Path) -> dict[tuple[str, str], list[dict]]:
    """Every stored record ``{(set, tag): [record per seed]}``."""
    out: dict[tuple[str, str], list[dict]] = {}
    for p in sorted(Path(root).glob("*/seed*/record_*.json")):
        r = read_json(p)
        out.setdefault((r["set"], r["tag"]), []).append(r)
    return out


def investigations(root: Path) -> str | None:
    """Variants of the retraining (optimiser start, iterations...) beside the main run of
    the same sets: test accuracy, cue flips after, and how the selected images' mean
    true-class probability moved (after step 1 / minimum / end / total variation)."""
    recs = load_tags(root)
    sets = sorted({s for s, t in recs if t != "main"})
    if not sets:
        return None
    rows = []
    for name in sets:
        tags = ["main"] + sorted(t for s, t in recs if s == name and t != "main")
        for tag in tags:
            rs = recs.get((name, tag), [])
            if not rs:
                continue
            variant = "Adam 1e-3, fresh (main)" if tag == "main" else tag
            labels = list(rs[0]["methods"]) if tag != "main" else [k for k in rs[0]["methods"]
                                                                 if k in ("continued", "pasa", "swap", "swap_pasa")]
            for label in labels:
                ms = [r["methods"][label] for r in rs if label in r["methods"]]
                st = [m.get("start") for m in ms if m.get("start")]
                prof = (f"{np.mean([x['first'] for x in st]):.2f} / {np.mean([x['min'] for x in st]):.2f} / "
                        f"{np.mean([x['last'] for x in st]):.2f}" if st else "–")
                tv = f"{np.mean([x['total_variation'] for x in st]):.2f}" if st else "–"
                flips = mean_std(((m.get("cue") or {}).get("after") or {}).get("flip_rate") for m in ms)
                rows.append([name, variant, label, fmt(mean_std(m["test"] for m in ms)), fmt(flips, digits=2), prof, tv])
    return markdown_table(["set", "variant", "method", "test acc", "cue flips after",
                           "mean p_true selected: step 1 / min / end", "total variation"], rows)


def render(root: Path, command: str, tag: str = "main") -> str:
    recs = load(root, tag)
    by_regime: dict[str, dict[str, list[dict]]] = {}
    for name, rs in recs.items():
        by_regime.setdefault(rs[0]["regime"], {})[name] = sorted(rs, key=lambda r: r["seed"])
    parts = [BEGIN, "## Shortcut benchmark suite", "",
             f"Generated by `{command}` from the stored records (benchmarks/suite_report.py). Every set went "
             "through the generic user path: `image_folder` data set, train config, `select_tool.auto`-style "
             "auto-selection (the default pick: misclassified first, in turns from each class; ground-truth masks), retraining config with default parameters. "
             "*Recovered gap* = (method − base) / (oracle − base), the oracle trained with the cue independent of "
             "the class and scored on the same test images. *Δ vs best no-feedback* = method − the best of "
             "continued / misclassified in the same run. *Cue flips*: share of test predictions that change when "
             "the cue region is swapped with another class's.", ""]
    if not by_regime:
        parts += ["**pending**: no finished record yet.", ""]
    else:
        parts += [goal_rows(by_regime), ""]
        hard = hard_case(root)
        if hard:
            parts += [hard, ""]
        for regime in sorted(by_regime):
            parts += [f"### Regime {regime}: {REGIME_TEXT.get(regime, regime)}", "", regime_summary(regime, by_regime[regime]), ""]
            for name in sorted(by_regime[regime]):
                parts += [set_table(name, by_regime[regime][name]), ""]
    inv = investigations(root)
    if inv:
        parts += ["### Investigations: retraining variants on the same sets and selections", "", inv, ""]
    parts.append(END)
    return "\n".join(parts)


def write(path: Path, *, root: Path, command: str) -> str:
    """Replaces the suite section of ``path`` (appended when absent); the rest is kept."""
    section = render(root, command)
    return replace_section(path, section, begin=BEGIN, end=END, title="# Benchmarks")
