"""Markdown for reports and PR comments: one cell formatter and one table writer (Python 3.8-clean).

Every report that prints a table (build gate, device gate, perf, reliability, registry) uses these, so
a number, a digest or a missing value reads the same everywhere.
"""

from __future__ import annotations

import math
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
