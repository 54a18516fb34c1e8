"""Thesis tables from finished run directories, as LaTeX (booktabs) and Markdown.

Run::

    python -m plot_utils.tables results/train_symbols results/backprops_symbols --out results/tables

Writes into ``--out``:

* ``accuracy.tex`` / ``accuracy.md`` — accuracy on train / validation / test, base row
  first, one row per retraining method (thesis Tables 3.5, 4.3, 5.2, 5.6, 6.2, 6.6, 6.10);
* ``per_class.tex`` / ``per_class.md`` — per-class precision / recall / F1 per split
  (Tables 3.6, 4.4, 5.3, 5.7, 6.3, 6.7, 6.11);
* ``visualisation.tex`` / ``visualisation.md`` (when a retraining run is given) — per
  selected image: name, image, mask, initial CAM, initial probabilities, and per method
  the final CAM and probabilities (Tables 4.5, 5.4, 5.8, 6.4, 6.8, 6.12); the images
  are written to ``visualisation_images/`` next to the table;
* ``tables.tex`` — a standalone document with all of them (``pdflatex tables.tex`` in
  ``--out`` checks the layout).

A value a run does not contain is printed as ``missing: <file> <key>``; runs from
different data sets are refused. Tables are built with ``pandas.Styler.to_latex`` and a
jinja2 Markdown template, never by hand-assembled rows.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from common.cli import run_main
from common.images import save_png
from common.io import atomic_write_text, ensure_dir
from common.logs import parse_command_line
from plot_utils.results import (SPLIT_LABELS, SPLITS, Missing, Run, class_names_of, is_missing, load_runs, table_rows)
from plot_utils.table_format import Table, fmt_value, jinja_env, make_table
from plot_utils.visualisation_table import visualisation_table

METRICS = (("precision", "P"), ("recall", "R"), ("f1-score", "F1"))
_STANDALONE_TEMPLATE = r"""\documentclass{article}
\usepackage[margin=1.5cm,landscape]{geometry}
\usepackage{booktabs}
\usepackage{multirow}
\usepackage{graphicx}
\begin{document}
((* for t in tables *))
\begin{table}[ht]
\centering
\caption{((( t.caption | latex_escape )))}
((* if t.wide *))\resizebox{\linewidth}{!}{%
((( t.latex )))}
((* else *))((( t.latex )))
((* endif *))\end{table}
\clearpage
((* endfor *))
\end{document}
"""


# ----- accuracy ----------------------------------------------------------------------
def accuracy_frame(runs: list[Run], digits: int = 3):
    """Accuracy per split, base row first, one row per method (strings, Missing marked)."""
    rows = table_rows(runs)
    data = [[fmt_value(r.accuracy[s], digits) for s in SPLITS] for r in rows]
    return pd.DataFrame(data, index=pd.Index([r.label for r in rows], name="Method"),
                        columns=[SPLIT_LABELS[s] for s in SPLITS])


def accuracy_table(runs: list[Run], digits: int = 3) -> Table:
    return make_table("accuracy", "Accuracy on train, validation and test", accuracy_frame(runs, digits), ["Method"])


# ----- per class ---------------------------------------------------------------------
def per_class_frame(runs: list[Run], digits: int = 2):
    """Per-class P/R/F1 for every split; rows (method, class), columns (split, metric)."""
    rows = table_rows(runs)
    classes = class_names_of(runs)
    data, index = [], []
    for r in rows:
        for cls in classes:
            line = []
            for split in SPLITS:
                rep = r.report[split]
                for key, _ in METRICS:
                    if is_missing(rep):
                        line.append(str(rep))
                    elif not isinstance(rep.get(cls), dict) or key not in rep[cls]:
                        line.append(str(Missing(f"{_where(r)} report.{split}.{cls}.{key}")))
                    else:
                        line.append(fmt_value(rep[cls][key], digits))
            data.append(line)
            index.append((r.label, cls))
    columns = pd.MultiIndex.from_tuples([(SPLIT_LABELS[s], short) for s in SPLITS for _, short in METRICS])
    return pd.DataFrame(data, index=pd.MultiIndex.from_tuples(index, names=["Method", "Class"]), columns=columns)


def _where(row) -> str:
    return "result.json" if (row.source / "result.json").exists() and row.label == "Base" else "summary.json"


def per_class_table(runs: list[Run], digits: int = 2) -> Table:
    return make_table("per_class", "Per-class precision (P), recall (R) and F1 per split",
                  per_class_frame(runs, digits), ["Method", "Class"])


def build_tables(runs: list[Run], digits: int = 3, load_images: bool = True) -> list[Table]:
    """All tables for ``runs`` (visualisation only when a retraining run is among them)."""
    tables = [accuracy_table(runs, digits), per_class_table(runs, min(digits, 2))]
    retrain = [r for r in runs if r.kind == "retrain"]
    if retrain:
        tables.append(visualisation_table(retrain[0], load_images=load_images))
    return tables


def standalone_tex(tables: list[Table]) -> str:
    """A compilable LaTeX document with every table (booktabs, multirow, graphicx)."""
    return jinja_env(latex=True).from_string(_STANDALONE_TEMPLATE).render(tables=tables)


def save_tables(tables: list[Table], out: str | Path) -> list[Path]:
    """Writes every table as ``<name>.tex`` and ``<name>.md``, its images, and ``tables.tex``."""
    document = standalone_tex(tables)  # rendered before anything is written
    out = ensure_dir(out)
    written = []
    for t in tables:
        for rel, arr in t.images.items():
            written.append(save_png(out / rel, arr))
        written.append(atomic_write_text(out / f"{t.name}.tex", t.latex))
        written.append(atomic_write_text(out / f"{t.name}.md", t.markdown))
    written.append(atomic_write_text(out / "tables.tex", document))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plot_utils.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="training and/or retraining run directories")
    parser.add_argument("--out", required=True, help="output folder for .tex/.md tables and images")
    parser.add_argument("--digits", type=int, default=3, help="decimals for accuracies (P/R/F1 use at most 2)")
    parser.add_argument("--no-images", action="store_true",
                        help="do not load the data set for the 'Image' row of the visualisation table")
    args = parse_command_line(parser, argv)
    runs = load_runs(args.runs)
    tables = build_tables(runs, digits=args.digits, load_images=not args.no_images)
    save_tables(tables, args.out)
    for t in tables:
        print(f"{t.name}: {Path(args.out) / (t.name + '.tex')}")
    print(Path(args.out) / "tables.tex")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
