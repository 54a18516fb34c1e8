"""The thesis report's page: Markdown pieces and the same page as one HTML file.

The report itself (``exp_scripts.thesis_report``) assembles the sections; this module
only formats them.
"""
from __future__ import annotations

HTML_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #bbb;padding:3px 6px}
th{background:#eee}img{max-width:100%}code{background:#f4f4f4;padding:0 3px}"""


def md_image(rel: str, alt: str) -> str:
    """A Markdown image of ``rel`` (a path relative to the report folder)."""
    return f"![{alt}]({rel})"


def md_figures(figures: list[tuple[str, str]]) -> str:
    """``[(relative path, caption)]`` as bold captions, each above its image."""
    return "\n\n".join(f"**{caption}**\n\n{md_image(rel, caption)}" for rel, caption in figures)


def to_html(markdown_text: str, *, title: str) -> str:
    """The report as one HTML page (Markdown tables rendered; images stay relative
    links, so the page opens in a browser from the report folder)."""
    import html

    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
