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
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.cli import run_main
from common.errors import UserError
from common.io import atomic_write_text, ensure_dir
from common.images import save_png
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
        rows.append([_md_cell(v) for v in shown] + [_md_cell(v) for v in values])
    return _jinja().from_string(_MD_TEMPLATE).render(header=[_md_cell(h) for h in names + cols], rows=rows)


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


# ----- visualisation -----------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text))


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)


def _selected_indices(run: Run) -> tuple[list[str], Any]:
    """Indices in selection order: the selection file's when it is readable (it holds the
    masks), else the ones ``run.json`` lists."""
    if run.selection_path is not None and run.selection_path.exists():
        from datasets.selection import load_selection

        selection = load_selection(run.selection_path, check_masks=False)
        return selection.indices, selection
    return list(run.run_info.selected), None


def _fmt_probs(values: Any, digits: int = 2) -> str:
    if not isinstance(values, (list, tuple)) or not values:
        return ""
    return " ".join(f"{float(v):.{digits}f}" for v in values)


def _load_images_for(run: Run, indices: list[str]) -> dict[str, Any]:
    """``{index: uint8 image | Missing}`` via the run's train result and data set."""
    if run.train_result_path is None or not run.train_result_path.exists():
        reason = Missing(f"image (no train result found for {run.name})")
        return {i: reason for i in indices}
    from classification_models.train_result import load_train_result

    try:
        ds = load_train_result(run.train_result_path).load_dataset()
        images, _ = ds.get_many(indices)
    except (UserError, ImportError) as exc:  # reported in the cell, never hidden
        reason = Missing(f"image ({str(exc).splitlines()[0][:160]})")
        return {i: reason for i in indices}
    return {i: images[k] for k, i in enumerate(indices)}


def visualisation_table(run: Run, load_images: bool = True, width: str = "1.6cm") -> Table:
    """The per-selected-image table of one retraining run (images as columns, as in the thesis).

    Rows: Name, Image, Mask, Initial CAM, Initial probs, then per method ``<m> CAM`` and
    ``<m> probs``. Image cells are ``\\includegraphics`` of files listed in
    ``Table.images`` (written by ``save_tables``); a cell the run cannot fill says what
    is missing.

    Raises:
        UserError: the run is not a retraining run or its selection is empty.
    """
    import pandas as pd

    if run.kind != "retrain":
        raise UserError(f"'{run.path}' is a training run; the visualisation table needs a retraining run")
    indices, selection = _selected_indices(run)
    if not indices:
        where = run.selection_path or (run.path / "summary.json")
        raise UserError(f"selection '{where}' is empty: no selected images for the visualisation table of '{run.path}'")
    images: dict[str, np.ndarray] = {}

    def graphic(arr_or_missing: Any, name: str) -> str:
        if is_missing(arr_or_missing) or arr_or_missing is None:
            return str(arr_or_missing or Missing(name))
        rel = f"{IMAGE_DIR}/{_safe(run.name)}_{_safe(name)}.png"
        images[rel] = np.asarray(arr_or_missing)
        return f"\\includegraphics[width={width}]{{{rel}}}"

    raw = _load_images_for(run, indices) if load_images else {i: Missing("image (not loaded)") for i in indices}
    # per-method CAM records (cams.npz): the selected images and their CAMs before/after
    from classification_models.cam import cam_overlay

    from plot_utils.results import CAMS_FILE, load_cams

    cam_tiles: dict[str, dict[str, list[np.ndarray]]] = {}
    for m in run.methods:
        cpath = run.path / m.label / CAMS_FILE
        if cpath.exists():
            rec = load_cams(cpath)["selected"]
            cam_tiles[m.label] = {
                str(idx): [rec["images"][k], cam_overlay(rec["images"][k], rec["cams_before"][k]),
                           cam_overlay(rec["images"][k], rec["cams_after"][k])]
                for k, idx in enumerate(rec["indices"]) if str(idx) in indices}
    for idx in indices:
        if is_missing(raw[idx]):
            found = [t[idx][0] for t in cam_tiles.values() if idx in t]
            if found:
                raw[idx] = found[0]
    columns = {}
    for idx in indices:
        col = {"Name": idx}
        col["Image"] = graphic(raw[idx], f"{idx}_image")
        if selection is not None:
            item = next(it for it in selection.items if it.index == idx)
            mpath = selection.mask_path(item)
            col["Mask"] = graphic(_read_png(mpath) if mpath.exists() else Missing(f"mask file {mpath}"), f"{idx}_mask")
        else:
            col["Mask"] = str(Missing("mask (config.json names no readable selection)"))
        initial_cam, initial_probs = None, None
        for m in run.methods:
            if initial_cam is None and idx in cam_tiles.get(m.label, {}):
                initial_cam = cam_tiles[m.label][idx][1]
            if initial_probs is None and idx in m.selected_probabilities:
                initial_probs = m.selected_probabilities[idx].before
        col["Initial CAM"] = graphic(initial_cam if initial_cam is not None else Missing(f"initial CAM image of {idx}"),
                                     f"{idx}_initial_cam")
        col["Initial probs"] = _fmt_probs(initial_probs) or str(Missing(f"summary.json selected_probabilities.{idx}.before"))
        for m in run.methods:
            if idx in cam_tiles.get(m.label, {}):
                final = cam_tiles[m.label][idx][2]
            else:
                final = Missing(f"final CAM image of {idx} for {m.label}")
            col[f"{m.label} CAM"] = graphic(final, f"{m.label}_{idx}_final_cam")
            after = m.selected_probabilities[idx].after if idx in m.selected_probabilities else None
            col[f"{m.label} probs"] = _fmt_probs(after) or str(
                Missing(f"summary.json methods.{m.label}.selected_probabilities.{idx}.after"))
        columns[idx] = col
    order = ["Name", "Image", "Mask", "Initial CAM", "Initial probs"]
    for m in run.methods:
        order += [f"{m.label} CAM", f"{m.label} probs"]
    frame = pd.DataFrame({k: [columns[k][r] for r in order] for k in indices}, index=pd.Index(order))
    graphic_rows = [r for r in order if r in ("Image", "Mask", "Initial CAM") or r.endswith(" CAM")]
    raw_rows = [r for r in graphic_rows if any(str(v).startswith("\\includegraphics") for v in frame.loc[r])]
    md = frame.copy()
    for r in raw_rows:  # cell by cell: a row assignment fails on a one-column frame
        for c in md.columns:
            md.at[r, c] = re.sub(r"\\includegraphics\[[^]]*\]\{([^}]*)\}", r"![](\1)", str(frame.at[r, c]))
    table = Table("visualisation", f"Selected images of {run.name}: initial and final CAMs and probabilities",
                  frame, to_latex(frame, raw_rows=raw_rows, hide_header=True), to_markdown(md, [""]), wide=True,
                  images=images)
    return table


# ----- everything --------------------------------------------------------------------
def build_tables(runs: list[Run], digits: int = 3, load_images: bool = True) -> list[Table]:
    """All tables for ``runs`` (visualisation only when a retraining run is among them)."""
    tables = [accuracy_table(runs, digits), per_class_table(runs, min(digits, 2))]
    retrain = [r for r in runs if r.kind == "retrain"]
    if retrain:
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
    args = parser.parse_args(argv)
    runs = load_runs(args.runs)
    tables = build_tables(runs, digits=args.digits, load_images=not args.no_images)
    save_tables(tables, args.out)
    for t in tables:
        print(f"{t.name}: {Path(args.out) / (t.name + '.tex')}")
    print(Path(args.out) / "tables.tex")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
