"""Tables as LaTeX (booktabs, ``pandas.Styler.to_latex``) and Markdown (a jinja2 template):
the one place where the project renders a table, never by hand-assembled rows."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jinja2
import pandas as pd

from plot_utils.results import is_missing

#: the folder, next to the tables, of the images a table shows
IMAGE_DIR = "visualisation_images"

_MD_TEMPLATE = """\
| {{ header | join(" | ") }} |
|{% for h in header %} {{ "---" if loop.first else "---:" }} |{% endfor %}
{% for row in rows %}| {{ row | join(" | ") }} |
{% endfor %}"""


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


def jinja_env(latex: bool = False):
    """A jinja2 environment; for LaTeX, delimiters that cannot clash with ``{%`` or ``{{``."""
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
    return jinja_env().from_string(_MD_TEMPLATE).render(header=[_md_cell(h) for h in header],
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


def make_table(name: str, caption: str, frame, markdown_index: Sequence[str], wide: bool = False,
               raw_rows: Sequence[Any] = (), images: dict | None = None) -> Table:
    """A ``Table`` of ``frame`` rendered as LaTeX and Markdown."""
    return Table(name, caption, frame, to_latex(frame, raw_rows=raw_rows),
                 to_markdown(frame, markdown_index), wide, dict(images or {}))
