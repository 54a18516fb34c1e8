"""Expert relevant/irrelevant filter labels vs the ranking cut (thesis §7.1.2, Fig 7.4).

Run::

    python -m vis_exp.expert_labels results/analysis/ranking/ranking.json expert.json --out results/analysis/expert

``expert.json`` (written by the user after looking at the filter grids)::

    {"relevant": [0, 5, 17], "irrelevant": [1, 2, 3]}

The ranking's top ``cut`` features are "relevant", the rest "irrelevant"; the ranking
is taken as the truth and the expert as the prediction (as in the thesis). Filters the
expert did not label are left out and listed. Writes ``expert_report.json`` and
``expert_report.md`` / ``.tex`` (scikit-learn classification report).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import pandas as pd
from sklearn.metrics import classification_report

from common.cli import run_main
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text, read_json
from common.logs import parse_command_line
from plot_utils.table_format import to_latex, to_markdown
from vis_exp.gap_features import out_dir

LABELS = ("irrelevant", "relevant")


def read_expert_labels(data, source: str, n_filters: int) -> dict[int, str]:
    """``{filter: "relevant"|"irrelevant"}`` from the expert JSON (overlaps and bad ids are errors)."""
    if not isinstance(data, dict) or not set(data) <= set(LABELS) or not data:
        raise UserError(f"{source}: expected {{\"relevant\": [...], \"irrelevant\": [...]}}, got keys {sorted(data) if isinstance(data, dict) else data!r}")
    out: dict[int, str] = {}
    for label in LABELS:
        for f in data.get(label, []):
            if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < n_filters:
                raise UserError(f"{source}: '{label}' holds {f!r}, not a filter id in 0..{n_filters - 1}")
            if f in out and out[f] != label:
                raise UserError(f"{source}: filter {f} is listed as both relevant and irrelevant")
            out[f] = label
    return out


def compare(*, order: Sequence[int], cut: int, expert: dict[int, str]) -> dict:
    """Classification report of expert labels against the ranking cut.

    Args:
        order: feature ids, best first (``ranking.json`` ``order``).
        cut: the first ``cut`` features of ``order`` are relevant.
        expert: ``{filter: label}``.
    """
    relevant = set(int(f) for f in list(order)[:cut])
    filters = sorted(expert)
    if not filters:
        raise UserError("the expert labelled no filters")
    truth = ["relevant" if f in relevant else "irrelevant" for f in filters]
    pred = [expert[f] for f in filters]
    report = classification_report(truth, pred, labels=list(LABELS), output_dict=True, zero_division=0)
    return {"report": report, "n_labelled": len(filters), "cut": int(cut),
            "unlabelled": sorted(set(int(f) for f in order) - set(filters)),
            "expert_relevant": int(sum(p == "relevant" for p in pred)),
            "ranking_relevant": int(sum(t == "relevant" for t in truth))}


def report_frame(report: dict):
    rows = [k for k in (*LABELS, "macro avg", "weighted avg") if k in report]
    data = [[f"{report[r]['precision']:.2f}", f"{report[r]['recall']:.2f}", f"{report[r]['f1-score']:.2f}",
             f"{int(report[r]['support'])}"] for r in rows]
    return pd.DataFrame(data, index=pd.Index(rows, name="Class"), columns=["precision", "recall", "f1-score", "support"])


def write_expert_report(ranking, expert_data, *, out, cut: int | None = None, ranking_source: str = "ranking",
                        expert_source: str = "expert labels") -> dict:
    """Expert labels (``expert_data``, the expert JSON's content) against a ranking
    (``vis_exp.feature_ranking``'s result), written to ``out`` (``expert_report.json/.md/.tex``).

    Returns:
        ``compare``'s result plus ``markdown`` (the report table).

    Raises:
        UserError: the ranking has no order or no cut (and ``cut`` is None), bad expert labels.
    """
    order = ranking.get("order") if isinstance(ranking, dict) else None
    if not isinstance(order, list) or not order:
        raise UserError(f"ranking '{ranking_source}' has no 'order' list")
    cut = cut if cut is not None else ranking.get("cut")
    if cut is None:
        raise UserError(f"ranking '{ranking_source}' has no cut (no k reached the full model); pass --cut")
    expert = read_expert_labels(expert_data, expert_source, len(order))
    result = compare(order=order, cut=int(cut), expert=expert)
    out = out_dir(out)
    frame = report_frame(result["report"])
    markdown = to_markdown(frame)
    atomic_write_json(out / "expert_report.json", result)
    atomic_write_text(out / "expert_report.md", markdown)
    atomic_write_text(out / "expert_report.tex", to_latex(frame))
    return {**result, "markdown": markdown}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.expert_labels", description=__doc__.split("\n\n")[0])
    parser.add_argument("ranking", help="ranking.json from vis_exp.feature_ranking")
    parser.add_argument("expert", help="expert labels JSON")
    parser.add_argument("--cut", type=int, default=None, help="override the ranking's cut")
    parser.add_argument("--out", required=True)
    args = parse_command_line(parser, argv)
    result = write_expert_report(read_json(args.ranking, what="ranking"), read_json(args.expert, what="expert labels"),
                                 out=args.out, cut=args.cut, ranking_source=args.ranking, expert_source=args.expert)
    print(result["markdown"], end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
