"""Reports as markdown and as one self-contained HTML page (images embedded)."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polytask.evaluation.plots import PLOTS_HINT, MissingPlottingError


def _markdown() -> Any:
    """A CommonMark renderer with GitHub tables and raw HTML off (markdown-it-py: a
    well-kept parser, so report text renders as the .md file reads)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass
class _Block:
    kind: str  # "text", "table", "figure", "heading"
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    image: bytes = b""
    name: str = ""


class Report:
    """A report built block by block and written as ``<stem>.md`` (figures as PNG files
    beside it) and ``<stem>.html`` (one file, figures embedded as data URIs).

    Figures are given as functions returning PNG bytes; when matplotlib is missing they are
    left out, the report says so, and :attr:`missing_plots` is set so a command can print
    the install hint.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.blocks: list[_Block] = []
        self.missing_plots = False

    def heading(self, text: str) -> None:
        """A section heading."""
        self.blocks.append(_Block("heading", text))

    def text(self, markdown: str) -> None:
        """Markdown text: kept as it is in the .md file, rendered to HTML by markdown-it-py
        (CommonMark with tables; raw HTML in the text is escaped, never run)."""
        self.blocks.append(_Block("text", markdown))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """A table."""
        self.blocks.append(
            _Block("table", headers=list(headers), rows=[[str(c) for c in r] for r in rows])
        )

    def figure(self, name: str, caption: str, draw: Callable[[], bytes]) -> None:
        """A figure named ``name`` (file ``<stem>-<name>.png``), drawn now if it can be."""
        try:
            image = draw()
        except MissingPlottingError:
            self.missing_plots = True
            self.blocks.append(_Block("text", f"*{caption}: not drawn ({PLOTS_HINT}).*"))
            return
        self.blocks.append(_Block("figure", caption, image=image, name=name))

    def markdown(self, stem: str = "report") -> str:
        """The markdown text (figures referenced as ``<stem>-<name>.png``)."""
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b.kind == "heading":
                out += [f"## {b.text}", ""]
            elif b.kind == "text":
                out += [b.text, ""]
            elif b.kind == "table":
                out.append("| " + " | ".join(b.headers) + " |")
                out.append("|" + "---|" * len(b.headers))
                out += ["| " + " | ".join(r) + " |" for r in b.rows]
                out.append("")
            else:
                out += [f"![{b.text}]({stem}-{b.name}.png)", ""]
        return "\n".join(out)

    def html(self) -> str:
        """One self-contained HTML page."""
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            if b.kind == "heading":
                body.append(f"<h2>{html.escape(b.text)}</h2>")
            elif b.kind == "text":
                body.append(_markdown().render(b.text))
            elif b.kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                    for r in b.rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            else:
                data = base64.b64encode(b.image).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
            "padding:.3em .6em;text-align:right;white-space:nowrap}th{background:#eee}"
            "img{max-width:100%}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"
        )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{style}</style></head><body>"
            + "\n".join(body)
            + "</body></html>\n"
        )

    def write(self, folder: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.md``, its PNG figures and ``<stem>.html`` into ``folder``; return
        the paths of the markdown and HTML files."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for b in self.blocks:
            if b.kind == "figure":
                (folder / f"{stem}-{b.name}.png").write_bytes(b.image)
        md, page = folder / f"{stem}.md", folder / f"{stem}.html"
        md.write_text(self.markdown(stem))
        page.write_text(self.html())
        return md, page
