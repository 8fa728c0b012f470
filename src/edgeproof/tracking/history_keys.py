"""The tags of a model version's history: one per entry, named by the entry's own id, and their order.

A history entry's tag is ``history.record-<record id>`` (the record's content id,
:func:`edgeproof.tracking.record.content_id`) for a pipeline run's verdict and
``history.device-<report id>`` (the device report's content id) for a device gate's. Two senders of
the same model file share its registered version and may both read it before either writes: a
number picked from what each read (``history.0002``) was the same for both, and the later write
replaced the other verdict. A key of the entry's own cannot be taken by another record, and sending
the same record again writes the same key. Versions judged before keep their numbered tags
(``history.0001`` ...): they are read, ordered before the others (they were written first), capped
and withdrawn as before.

The history is in the order it was written: each entry says when it was first written
(``logged_ms``, the sender's clock), kept when the same entry is written again. Not by when its run
ended (``at_ms``): a record without times, or one replayed from the outbox days after its run,
would sort first and be the first the cap deletes, though just written; nor by key (a hash, so
entries of the same time would be in no order anyone chose). No MLflow import here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edgeproof.io import json_sha256

HISTORY_PREFIX = "history."
LOGGED = "logged_ms"
"""An entry's field: when it was first written (milliseconds since the epoch); the history's order."""


def parse_entry(value: str) -> dict[str, Any] | None:
    """A history tag's entry; ``None`` for one that is not a JSON object."""
    try:
        entry = json.loads(value)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _millis(entry: Mapping[str, Any], name: str) -> int:
    """The entry's time ``name`` in milliseconds; -1 where it has none (a bool is no time)."""
    value = entry.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _age(key: str, value: str) -> tuple[int, int, int, str]:
    """Where a history tag sorts, oldest first: the numbered tags of before (written before any keyed
    by its entry) by number; the others by when they were first written (``logged_ms``), then by when
    their run ended (``at_ms``), then by key, a stable order for two of the same time. An entry that
    does not parse or says no time sorts before those that do: keyed entries written before
    ``logged_ms`` existed (the only ones without it) were written before those with it."""
    suffix = key[len(HISTORY_PREFIX) :]
    if suffix.isdigit():
        return (0, int(suffix), 0, "")
    entry = parse_entry(value) or {}
    return (1, _millis(entry, LOGGED), _millis(entry, "at_ms"), suffix)


def first_written(entry: Mapping[str, Any], previous: str | None) -> dict[str, Any]:
    """``entry`` with the ``logged_ms`` of ``previous``, the value its key holds already, if any:
    the same record sent again writes the same value and keeps its place in the history (an entry
    written before ``logged_ms`` existed stays without one, so it keeps its place too)."""
    before = parse_entry(previous) if previous is not None else None
    if before is None:
        return dict(entry)
    kept = {k: v for k, v in entry.items() if k != LOGGED}
    return {**kept, LOGGED: before[LOGGED]} if LOGGED in before else kept


def history_keys(tags: Mapping[str, str]) -> list[str]:
    """The version's history tags, oldest first."""
    return sorted((k for k in tags if k.startswith(HISTORY_PREFIX)), key=lambda k: _age(k, tags[k]))


def history_key(kind: str, entry_id: str) -> str:
    """The tag of a history entry: ``history.<kind>-<id>``, the id being the entry's own (a record's
    content id, a device report's), never a number two senders could both pick. ``kind`` keeps a
    record's and a device report's ids apart, and every key apart from the numbered ones of before."""
    return f"{HISTORY_PREFIX}{kind}-{entry_id}"


def record_history_key(record: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """The history tag of a pipeline record's verdict: its content id (``record_id``), the same
    however often the record is sent; for a record without one (not made by
    :func:`edgeproof.tracking.record.build_record`), the entry's own content hash without its write
    time (which differs at every send, and which the entries hashed before it existed lacked)."""
    rid = record.get("record_id")
    if rid:
        return history_key("record", str(rid))
    return history_key("entry", json_sha256({k: v for k, v in entry.items() if k != LOGGED}, 32))
