"""The report's Markdown as one self-contained HTML page.

Only the Markdown the report writes is understood: headings, paragraphs, lists, tables, images
with a caption line (``*Figure n. …*``) and the inline forms ``**bold**``, ``*emphasis*``,
```code```, ``~~struck~~`` and ``[text](#anchor)``. Figures are embedded as data URIs (nothing is
fetched from outside). Tables sit in a horizontally scrolling box, so a wide table never widens
the page; the rows of a status table (:data:`ctaflow.report.format.STATUS_HEADER` first) are
tinted by status and their footnote numbers link to the reasons listed under the table.
"""

from __future__ import annotations

import base64
import html
import re

from ctaflow.report.format import STATUS_HEADER

STYLE = (
    "body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em;line-height:1.4}"
    ".table-wrap{overflow-x:auto;max-width:100%;margin:1em 0}"
    "table{border-collapse:collapse;font-size:90%}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    "td.num{text-align:right;white-space:nowrap}"
    "th{background:#f3f3f3;text-align:center}"
    "tr.flagged td{background:#fff6d6}"
    "tr.excluded td{background:#eee;color:#555}"
    "td.status{text-align:left;white-space:nowrap;font-weight:bold}"
    "tr.flagged td.status{color:#8a5a00}"
    "tr.excluded td.status{color:#a00}"
    "del{color:#888}"
    "figure{margin:1.5em 0}"
    "figure img{max-width:100%;height:auto}"
    "figcaption{font-size:90%;color:#333;max-width:50em}"
    "code{background:#f5f5f5;padding:0 2px}"
    "li:target{background:#ffe9a8}"
)

_INLINE = [
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"~~(.+?)~~"), r"<del>\1</del>"),
    (re.compile(r"(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\((#[\w-]+)\)"), r"<a href='\2'>\1</a>"),
]
_CODE = re.compile(r"`([^`]+)`")
_FOOTNOTE = re.compile(r"\[(\d+)\]")
_CELL_FOOTNOTE = re.compile(r"(?<= )\[(\d+)\]$")  # "⚠ flagged [1]", "⚠ -0.06 [3]"
_CAPTION = re.compile(r"^\*(Figure \d+\..*)\*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_NUMBER = re.compile(r"^(~~)?[-+−]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?(~~)?$")


def inline(text: str) -> str:
    """Escape ``text`` for HTML and render the report's inline Markdown (code spans first: what
    they hold is shown as written)."""
    parts = _CODE.split(text)
    out = []
    for n, part in enumerate(parts):
        escaped = html.escape(part, quote=False)
        if n % 2:
            out.append(f"<code>{escaped}</code>")
            continue
        for pattern, repl in _INLINE:
            escaped = pattern.sub(repl, escaped)
        out.append(escaped)
    return "".join(out)


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(body)]


def _td(raw: str, rendered: str) -> str:
    """A table cell; numbers right-aligned."""
    return f"<td class='num'>{rendered}</td>" if _NUMBER.match(raw) else f"<td>{rendered}</td>"


class _Page:
    """Builds the body from Markdown lines (see :func:`to_html`)."""

    def __init__(self, figures: dict[str, bytes]) -> None:
        self.figures = figures
        self.out: list[str] = []
        self.table: list[str] = []
        self.items: list[str] = []
        self.n_tables = 0
        self.footnotes: str | None = None  # id prefix of the last status table's footnotes

    def flush_table(self) -> None:
        if not self.table:
            return
        rows = [_cells(line) for line in self.table]
        head, body = rows[0], rows[2:]
        self.n_tables += 1
        status = bool(head) and head[0] == STATUS_HEADER
        prefix = f"t{self.n_tables}"
        self.footnotes = prefix

        def link(match: re.Match) -> str:
            return f"<a href='#{prefix}-{match.group(1)}'>[{match.group(1)}]</a>"

        out = [f"<div class='table-wrap'><table id='{prefix}'>"]
        out.append("<tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>")
        for row in body:
            cls = ""
            cells = [_CELL_FOOTNOTE.sub(link, inline(c)) for c in row]
            if status and cells:
                kind = next((k for k in ("flagged", "excluded", "valid") if k in row[0]), "")
                cls = f" class='{kind}'" if kind else ""
                cells[0] = f"<td class='status'>{cells[0]}</td>"
                cells[1:] = [_td(raw, c) for raw, c in zip(row[1:], cells[1:], strict=False)]
            else:
                cells = [_td(raw, c) for raw, c in zip(row, cells, strict=False)]
            out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
        out.append("</table></div>")
        self.out.extend(out)
        self.table.clear()

    def flush_list(self) -> None:
        if not self.items:
            return
        self.out.append("<ul>" + "".join(self.items) + "</ul>")
        self.items.clear()

    def item(self, text: str) -> None:
        match = _FOOTNOTE.match(text)
        ident = f" id='{self.footnotes}-{match.group(1)}'" if match and self.footnotes else ""
        self.items.append(f"<li{ident}>{inline(text)}</li>")

    def figure(self, name: str) -> None:
        data = base64.b64encode(self.figures.get(name, b"")).decode()
        self.out.append(
            f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></figure>"
        )

    def caption(self, text: str) -> bool:
        """Put a caption line into the figure just written (False: the last block is no
        figure)."""
        if not self.out or not self.out[-1].endswith("</figure>"):
            return False
        self.out[-1] = self.out[-1][: -len("</figure>")] + (
            f"<figcaption>{inline(text)}</figcaption></figure>"
        )
        return True

    def line(self, line: str) -> None:
        if line.startswith("|"):
            self.flush_list()
            self.table.append(line)
            return
        self.flush_table()
        if line.startswith("- "):
            self.item(line[2:])
            return
        if not line.strip():
            return  # a blank line ends nothing but a table; lists end at the next block
        self.flush_list()
        self.footnotes = None  # footnotes follow their table directly
        caption = _CAPTION.match(line.strip())
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            self.out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("![") and "](" in line:
            self.figure(line[line.index("](") + 2 : line.rindex(")")])
        elif caption and self.caption(caption.group(1)):
            pass
        else:
            self.out.append(f"<p>{inline(line)}</p>")

    def finish(self) -> str:
        self.flush_table()
        self.flush_list()
        return "\n".join(self.out)


def to_html(markdown: str, figures: dict[str, bytes] | None = None) -> str:
    """A self-contained HTML page from the report's Markdown (see the module docstring)."""
    page = _Page(figures or {})
    for line in markdown.splitlines():
        page.line(line)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>ctaflow report</title><style>{STYLE}</style></head><body>"
        + page.finish()
        + "</body></html>\n"
    )
