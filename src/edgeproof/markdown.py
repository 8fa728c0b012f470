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


def one_line(text: Any) -> str:
    """A note as one line of plain text, with no raw HTML (a note can quote a pull request's file)."""
    return " ".join(str(text).split()).replace("<", "&lt;")


def table_rows_only(text: str) -> str:
    """Only the table lines of a markdown table written elsewhere (``dvc metrics diff --md`` in a pull
    request's build), with no raw HTML: the lines that could be a heading, a verdict or a comment go."""
    rows = [line.replace("<", "&lt;") for line in text.splitlines() if line.strip().startswith("|")]
    return "\n".join(rows)


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
