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
import dataclasses
import sys
from pathlib import Path
from typing import Any, Sequence

from common.cli import run_main
from common.io import atomic_write_text, ensure_dir
from common.images import save_png
from common.logs import parse_command_line
from plot_utils.results import (
    SPLIT_LABELS,
    SPLITS,
    Missing,
    Run,
    class_names_of,
    is_missing,
    load_runs,
    table_rows,
)

METRICS = (("precision", "P"), ("recall", "R"), ("f1-score", "F1"))
IMAGE_DIR = "visualisation_images"

_MD_TEMPLATE = """\
| {{ header | join(" | ") }} |
|{% for h in header %} {{ "---" if loop.first else "---:" }} |{% endfor %}
{% for row in rows %}| {{ row | join(" | ") }} |
{% endfor %}"""

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


@dataclasses.dataclass
class Table:
    """A generated table: the frame of display strings and its renderings."""

    name: str
    caption: str
    frame: Any  # pandas.DataFrame of strings
    latex: str
    markdown: str
    wide: bool = False
    images: dict[str, Any] = dataclasses.field(default_factory=dict)  # relative path -> uint8 array


# ----- formatting --------------------------------------------------------------------
def fmt_value(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals, or the Missing marker text."""
    if is_missing(value):
        return str(value)
    if value is None:
        return "missing"
    return f"{float(value):.{digits}f}"


def _jinja(latex: bool = False):
    """A jinja2 environment; for LaTeX, delimiters that cannot clash with ``{%`` or ``{{``."""
    import jinja2

    extra = dict(block_start_string="((*", block_end_string="*))", variable_start_string="(((",
                 variable_end_string=")))", comment_start_string="((=", comment_end_string="=))") if latex else {}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=latex, **extra)
    env.filters["latex_escape"] = latex_escape
    return env


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escapes LaTeX special characters in free text (captions)."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table (the first column left-aligned, the others right-aligned):
    every table the project prints or writes goes through here or :func:`to_markdown`.

    Args:
        header: the column titles.
        rows: the cells, row by row (``str()`` of each; ``|`` escaped).

    Returns:
        The table, one line per row, ending in a newline.
    """
    return _jinja().from_string(_MD_TEMPLATE).render(header=[_md_cell(h) for h in header],
                                                     rows=[[_md_cell(v) for v in r] for r in rows])


def to_markdown(frame, index_names: Sequence[str] | None = None, sparse: bool = True) -> str:
    """Renders a DataFrame of strings as a GitHub Markdown table (jinja2 template).

    Args:
        frame: the table; a MultiIndex on columns is flattened with spaces.
        index_names: header of the index columns (default: the frame's index names).
        sparse: repeat an outer index label only on its first row (as in LaTeX).
    """
    names = list(index_names or [n or "" for n in frame.index.names])
    cols = [" ".join(str(p) for p in c) if isinstance(c, tuple) else str(c) for c in frame.columns]
    rows, prev = [], None
    for key, values in zip(frame.index, frame.itertuples(index=False)):
        key = key if isinstance(key, tuple) else (key,)
        shown = list(key)
        if sparse and prev is not None and len(key) > 1 and key[0] == prev[0]:
            shown[0] = ""
        prev = key
        rows.append(list(shown) + list(values))
    return markdown_table(names + cols, rows)


def to_latex(frame, *, raw_rows: Sequence[Any] = (), hide_header: bool = False) -> str:
    """Renders a DataFrame of strings as a booktabs tabular via ``Styler.to_latex``.

    Every cell is LaTeX-escaped except the rows listed in ``raw_rows`` (those hold
    ``\\includegraphics`` commands built from sanitised file names). A single named
    index becomes the first column, so its name sits in the header row (thesis layout);
    ``hide_header`` drops the column header (the visualisation table's first row names
    the images already).
    """
    import pandas as pd

    if frame.index.nlevels == 1 and frame.index.name:
        frame = frame.reset_index().set_index(frame.index.name, drop=False)
        frame.index.name = None
        hide_index = True
    else:
        hide_index = False
    styler = frame.style.format(escape="latex")
    if len(raw_rows):
        styler = styler.format(lambda v: v, subset=pd.IndexSlice[list(raw_rows), :])
    styler = styler.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    if hide_index:
        styler = styler.hide(axis="index")
    rules = True
    if hide_header:
        styler = styler.hide(axis="columns").set_table_styles(
            [{"selector": "toprule", "props": ":toprule;"}, {"selector": "bottomrule", "props": ":bottomrule;"}])
        rules = False
    n_index = 0 if hide_index else frame.index.nlevels
    if hide_index:
        return styler.to_latex(hrules=True, column_format="l" + "r" * (frame.shape[1] - 1))
    return styler.to_latex(
        hrules=rules,
        column_format="l" * n_index + "r" * frame.shape[1],
        multicol_align="c",
        multirow_align="t",
    )


def _table(name: str, caption: str, frame, markdown_index: Sequence[str], wide: bool = False,
           raw_rows: Sequence[Any] = (), images: dict | None = None) -> Table:
    return Table(name, caption, frame, to_latex(frame, raw_rows=raw_rows),
                 to_markdown(frame, markdown_index), wide, dict(images or {}))


# ----- accuracy ----------------------------------------------------------------------
def accuracy_frame(runs: list[Run], digits: int = 3):
    """Accuracy per split, base row first, one row per method (strings, Missing marked)."""
    import pandas as pd

    rows = table_rows(runs)
    data = [[fmt_value(r.accuracy[s], digits) for s in SPLITS] for r in rows]
    return pd.DataFrame(data, index=pd.Index([r.label for r in rows], name="Method"),
                        columns=[SPLIT_LABELS[s] for s in SPLITS])


def accuracy_table(runs: list[Run], digits: int = 3) -> Table:
    return _table("accuracy", "Accuracy on train, validation and test", accuracy_frame(runs, digits), ["Method"])


# ----- per class ---------------------------------------------------------------------
def per_class_frame(runs: list[Run], digits: int = 2):
    """Per-class P/R/F1 for every split; rows (method, class), columns (split, metric)."""
    import pandas as pd

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
    return "metrics.json" if (row.source / "metrics.json").exists() and row.label == "Base" else "summary.json"


def per_class_table(runs: list[Run], digits: int = 2) -> Table:
    return _table("per_class", "Per-class precision (P), recall (R) and F1 per split",
                  per_class_frame(runs, digits), ["Method", "Class"])


def build_tables(runs: list[Run], digits: int = 3, load_images: bool = True) -> list[Table]:
    """All tables for ``runs`` (visualisation only when a retraining run is among them)."""
    tables = [accuracy_table(runs, digits), per_class_table(runs, min(digits, 2))]
    retrain = [r for r in runs if r.kind == "retrain"]
    if retrain:
        from plot_utils.visualisation_table import visualisation_table  # it builds on this module

        tables.append(visualisation_table(retrain[0], load_images=load_images))
    return tables


def standalone_tex(tables: list[Table]) -> str:
    """A compilable LaTeX document with every table (booktabs, multirow, graphicx)."""
    return _jinja(latex=True).from_string(_STANDALONE_TEMPLATE).render(tables=tables)


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
