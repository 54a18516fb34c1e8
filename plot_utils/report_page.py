"""The thesis report's page: Markdown pieces and the same page as one HTML file.

The report itself (``exp_scripts.thesis_report``) assembles the sections; this module
only formats them.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import logging
import re
from pathlib import Path

import markdown

log = logging.getLogger(__name__)

HTML_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #bbb;padding:3px 6px}
th{background:#eee}img{max-width:100%}code{background:#f4f4f4;padding:0 3px}"""


def md_image(rel: str, alt: str) -> str:
    """A Markdown image of ``rel`` (a path relative to the report folder)."""
    return f"![{alt}]({rel})"


def md_figures(figures: list[tuple[str, str]]) -> str:
    """``[(relative path, caption)]`` as bold captions, each above its image."""
    return "\n\n".join(f"**{caption}**\n\n{md_image(rel, caption)}" for rel, caption in figures)


#: image types a page embeds, by file suffix
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
               ".gif": "image/gif"}


def embed_images(html_text: str, base_dir: str | Path) -> str:
    """``src="<relative path>"`` of every image under ``base_dir`` replaced by the file's
    bytes as a ``data:`` URI, so the page is self-contained (it can be mailed or moved);
    an image that is missing stays a link and is logged."""
    base = Path(base_dir)

    def inline(match: re.Match) -> str:
        rel = html.unescape(match.group(1))
        path = base / rel
        kind = IMAGE_TYPES.get(path.suffix.lower())
        if kind is None or "://" in rel or rel.startswith("data:"):
            return match.group(0)
        if not path.is_file():
            log.warning("report page: image '%s' not found; left as a link", path)
            return match.group(0)
        return f'src="data:{kind};base64,{base64.b64encode(path.read_bytes()).decode("ascii")}"'

    return re.sub(r'src="([^"]+)"', inline, html_text)


def to_html(markdown_text: str, *, title: str, base_dir: str | Path | None = None) -> str:
    """The report as one HTML page (Markdown tables rendered). With ``base_dir`` (the
    report folder) the images are embedded (:func:`embed_images`) and the page opens
    anywhere; without, they stay links relative to the report folder."""

    body = markdown.markdown(markdown_text, extensions=["tables"])
    if base_dir is not None:
        body = embed_images(body, base_dir)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


@dataclasses.dataclass
class Page:
    """The report under construction: its folder, sections and what it could not do."""

    out: Path
    final: Path
    smoke: bool
    data_root: str | None
    sections: list[str] = dataclasses.field(default_factory=list)
    not_done: list[str] = dataclasses.field(default_factory=list)
    steps: list[str] = dataclasses.field(default_factory=list)

    @property
    def n_images(self) -> int:
        """Images per split of the chapter-7 analyses."""
        return 200 if self.smoke else 2000

    @property
    def formats(self) -> tuple[str, ...]:
        """Figure files: PNG (shown by the page) and PDF (for LaTeX); the smoke report only PNG."""
        return ("png",) if self.smoke else ("png", "pdf")

    @property
    def analysis_sizes(self) -> dict:
        """Sizes of the chapter-7 analyses; the smoke report's are smaller (fewer filter
        grids, feature summaries, trees and t-SNE iterations)."""
        return {"filters_per_end": 1 if self.smoke else 3, "n_estimators": 50 if self.smoke else 200,
                "tsne_iter": 250 if self.smoke else 1000, "top_changes": 1 if self.smoke else 2}

    def step(self, command: str) -> None:
        """Records (and logs, INFO) a step by the command that does the same on its own."""
        self.steps.append(command)
        log.info("- %s", command)
