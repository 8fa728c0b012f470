"""Markdown for reports and PR comments: one cell formatter and one table writer (Python 3.8-clean).

Every report that prints a table (build gate, device gate, perf, reliability, registry) uses these, so
a number, a digest or a missing value reads the same everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any


def cell(value: Any, digits: int = 4) -> str:
    """One table cell: ``None`` as an em dash, floats to ``digits`` significant digits, sha256 shortened.

    Pipes and newlines are replaced so that a value can never break the table it sits in.
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v, digits) for v in value)
    text = str(value)
    if len(text) == 64 and all(ch in "0123456789abcdef" for ch in text):
        return f"`{text[:12]}…`"
    if len(text) > 80:
        text = text[:77] + "…"
    return text.replace("|", "/").replace("\n", " ")


def fixed(value: Any, digits: int) -> str:
    """A figure in fixed point (``digits`` decimals, where :func:`cell` keeps significant digits); a missing
    one as an em dash, a value that is not a float as it is."""
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def inline(value: Any, limit: int = 120) -> str:
    """Text from outside (a pull request's params, a bundle's file name) as one inline code span.

    Whatever it holds, it cannot end the line it sits in, so it cannot start a heading, a fake verdict
    line or an HTML comment that hides the rest of a PR comment.
    """
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_MARKUP = {ord("\\"): "\\\\", ord("["): "\\[", ord("]"): "\\]", ord("*"): "\\*", ord("_"): "\\_", ord("<"): "&lt;"}
_MARKUP[ord("`")] = "\\`"  # a backtick no code span closes: escaped, so it cannot open one over the rest
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")  # CommonMark: closed by a run of the same length
_PLAIN_CELL = re.compile(r"[A-Za-z0-9 .,:;/%+=()\-—–→]*")  # nothing that is markup (nor a link): shown as is
_RULE_CELL = re.compile(r"\s*:?-+:?\s*")


_AUTOLINK = re.compile(r"@|://|(?i:www)\.|#(?=\d)")


def _no_autolink(text: str) -> str:
    # GitHub links "@user"/"@org/team" (and notifies them), bare "https://…" and "www.…" addresses and
    # "#123" references in rendered text, escaped or not: a zero-width space inside each keeps the text
    # readable and matches none of them. Code spans are never scanned.
    return _AUTOLINK.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


def one_line(text: Any, limit: int = 500) -> str:
    """A note as one line of plain text, at most ``limit`` characters of it, with no raw HTML, links (bare
    addresses and ``#123`` included), emphasis or @-mentions (a note or a rule's reason can quote a pull
    request's file names)."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = f"{flat[:limit]} … ({len(flat) - limit} characters cut)"
    return _escape_outside_code(flat)


def _escape_outside_code(text: str) -> str:
    """Markup escaped and autolinks (mentions, addresses, references) broken everywhere but in code spans,
    which render their text as it is (escaping there would show the backslashes: ``min\\_fps``) and link
    nothing."""
    out, at = [], 0
    for span in _CODE_SPAN.finditer(text):
        out += [_no_autolink(text[at : span.start()].translate(_MARKUP)), span.group(0)]
        at = span.end()
    return "".join([*out, _no_autolink(text[at:].translate(_MARKUP))])


def _pr_cell(text: str, limit: int) -> str:
    text = text.strip()
    plain = _PLAIN_CELL.fullmatch(text) and not _AUTOLINK.search(text) and len(text) <= limit
    return text if plain else inline(text, limit)


def table_rows_only(text: str, max_rows: int = 100, max_cols: int = 8, cell_limit: int = 80) -> str:
    """Only the table lines of a markdown table written elsewhere (``dvc metrics diff --md`` in a pull
    request's build), at most ``max_rows`` of ``max_cols`` cells: a cell that is not plain text becomes an
    inline code span (no HTML, link, emphasis or @-mention), so nothing in it can pose as a heading, a
    verdict or a comment; rows past the cap are counted under the table."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    out = []
    for row in rows[:max_rows]:
        cells = row.strip("|").split("|")[:max_cols]
        if all(_RULE_CELL.fullmatch(c) for c in cells):
            out.append("|" + "|".join(c.strip() for c in cells) + "|")
        else:
            out.append("| " + " | ".join(_pr_cell(c, cell_limit) for c in cells) + " |")
    if len(rows) > max_rows:
        out += ["", f"_{len(rows) - max_rows} more rows not shown (the build's `metrics-diff.md` has them)._"]
    return "\n".join(out)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 4, align: str | None = None) -> list[str]:
    """A GitHub-flavoured markdown table as lines; cells that are not already ``str`` go through :func:`cell`.

    ``align`` is one character per column (``l``, ``r`` or ``c``); default left.
    """
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    rule = [marks[a] for a in align] if align else ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    for row in rows:
        cells = [c if isinstance(c, str) else cell(c, digits) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
