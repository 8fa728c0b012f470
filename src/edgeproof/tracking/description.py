"""A model version's Markdown description in MLflow: its promotion record, the runs that moved an alias to
it, and the newest verdicts on the file that fit MLflow's column. Built from the version's tags alone (the
history and promotion records), between two marker lines (:data:`BEGIN`, :data:`END`): text outside them
(a note written in MLflow's UI) is the users' and kept. No MLflow import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeproof.markdown import table
from edgeproof.tracking.aliases import ROLLBACK_TAG
from edgeproof.tracking.history import SHA_TAG, history
from edgeproof.tracking.promotion import alias_records, promotion

DESCRIPTION_LIMIT = 5000
"""Characters of a model version's description: MLflow's schema declares ``VARCHAR(5000)``; SQLite
ignores it, PostgreSQL refuses a longer one (and with it every later verdict on the file)."""


BEGIN = "<!-- edgeproof: written from the version's tags; text outside this block is kept -->"
END = "<!-- /edgeproof -->"
"""The lines around edgeproof's part of a description (HTML comments: MLflow's UI shows them only in its editor)."""
_LEGACY = "Model file sha256 `"
"""How edgeproof's descriptions began before the markers: such a description is edgeproof's whole."""


def version_description(current: str | None, tags: Mapping[str, str], exp: str) -> str | None:
    """The description to write: ``current`` with edgeproof's block (:data:`BEGIN` … :data:`END`)
    written anew from ``tags``, and every character outside it kept (a description without the block is
    a user's note, and the block goes below it; one written by edgeproof before the markers existed is
    replaced). The block gets the room the note leaves in :data:`DESCRIPTION_LIMIT`; ``None`` (write
    nothing) when the note leaves too little for even a clipped block."""
    text = current or ""
    if BEGIN in text and END in text.split(BEGIN, 1)[1]:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
    else:
        before, after = ("" if text.startswith(_LEGACY) else text + ("\n\n" if text.strip() else "")), ""
    room = DESCRIPTION_LIMIT - len(before) - len(after) - len(BEGIN) - len(END) - 2
    if room < 100:
        return None
    return f"{before}{BEGIN}\n{describe_version(tags, exp, room)}\n{END}{after}"


def describe_version(tags: Mapping[str, str], exp: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """The version's Markdown description: the promotion record, then the newest verdicts on the file
    that fit in ``limit`` characters (the older ones are counted and stay in the ``history.*`` tags)."""

    def link(run_id: str | None) -> str:
        return f"[{run_id[:8]}](#/experiments/{exp}/runs/{run_id})" if run_id else "—"

    lines = [f"Model file sha256 `{tags.get(SHA_TAG, '?')}`.", ""]
    promoted = promotion(tags)
    if promoted:
        lines += ["**Promotion record** (fixed: later verdicts never change it)", ""]
        rows = [(p, v, link(promoted["run_id"]), promoted["origin"]) for p, v in sorted(promoted["verdicts"].items())]
        lines += table(["profile", "verdict", "run", "from"], rows)
        if promoted["metrics"]:
            lines += ["", "Metrics: " + ", ".join(f"{k} = {v}" for k, v in promoted["metrics"].items())]
        lines += ["", f"Provenance: {promoted['provenance']}; thresholds: {_thresholds(promoted['thresholds'])}"]
    for alias, moved in alias_records(tags).items():  # the run that made it champion may not have registered it
        figures = ", ".join(f"{k} = {v}" for k, v in moved["metrics"].items())
        back = tags.get(ROLLBACK_TAG.format(alias=alias))  # there by a rollback since that run's move
        lines += ["", f"**Promoted to `{alias}`** by run {link(moved['run_id'])} ({moved['origin']}; provenance: "
                      f"{moved['provenance']}): {_verdicts(moved['verdicts'])}; {figures or 'no metrics'}"
                      + (f"; back on this version by a rollback {back}" if back else "")]  # fmt: skip
    head = _clip("\n".join(lines), limit)
    rows = [
        (link(e.get("run_id")), e.get("origin"), _verdicts(e.get("verdicts") or {}), _thresholds(e.get("thresholds")))
        for e in history(tags)
    ]
    return head + _newest_rows(rows, limit - len(head))


def _newest_rows(rows: list[tuple[str, ...]], room: int) -> str:
    """The verdict table with as many of the newest ``rows`` as fit in ``room`` characters (oldest
    first), and a line counting the older ones left out; "" when there are none or nothing fits."""
    if not rows:
        return ""
    title = "\n\n**Verdicts on this file** (oldest first)\n\n"
    lines = table(["run", "from", "verdict", "thresholds"], rows)
    header, body = lines[:2], lines[2:]
    note = "\n\n… {} older verdicts in the tags `history.*`"
    used = len(title) + sum(len(line) + 1 for line in header) + len(note.format(len(rows)))
    kept: list[str] = []
    for line in reversed(body):
        if used + len(line) + 1 > room:
            break
        kept.insert(0, line)
        used += len(line) + 1
    older = len(body) - len(kept)
    if not kept:
        text = note.format(older)
        return text if len(text) <= room else ""
    return title + "\n".join([*header, *kept]) + (note.format(older) if older else "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _verdicts(verdicts: Mapping[str, str]) -> str:
    return "; ".join(f"{p}: {v}" for p, v in sorted(verdicts.items())) or "—"


def _thresholds(thresholds: Any) -> str:
    if not isinstance(thresholds, Mapping) or not thresholds:
        return "—"
    return ", ".join(f"{k} {v}" for k, v in sorted(thresholds.items()))
