"""The tags of a model version's history: one per entry, named by the entry's own id, and their order.

A history entry's tag is ``history.record-<record id>`` (the record's content id,
:func:`edgeproof.tracking.record.content_id`) for a pipeline run's verdict and
``history.device-<report id>`` (the device report's content id) for a device gate's. Two senders of
the same model file share its registered version and may both read it before either writes: a
number picked from what each read (``history.0002``) was the same for both, and the later write
replaced the other verdict. A key of the entry's own cannot be taken by another record, and sending
the same record again writes the same key. Versions judged before keep their numbered tags
(``history.0001`` ...): they are read, ordered before the others (they were written first), capped
and withdrawn as before. No MLflow import here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edgeproof.io import json_sha256

HISTORY_PREFIX = "history."


def parse_entry(value: str) -> dict[str, Any] | None:
    """A history tag's entry; ``None`` for one that is not a JSON object."""
    try:
        entry = json.loads(value)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _age(key: str, value: str) -> tuple[int, int, str]:
    """Where a history tag sorts, oldest first: the numbered tags of before (written before any keyed
    by its entry) by number; the others by when they were judged, then by key (a stable order for
    two judged in the same millisecond; an entry that does not parse, or says no time, first)."""
    suffix = key[len(HISTORY_PREFIX) :]
    if suffix.isdigit():
        return (0, int(suffix), "")
    at = (parse_entry(value) or {}).get("at_ms")
    return (1, at if isinstance(at, int) and not isinstance(at, bool) else -1, suffix)


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
    :func:`edgeproof.tracking.record.build_record`), the entry's own content hash."""
    rid = record.get("record_id")
    if rid:
        return history_key("record", str(rid))
    return history_key("entry", json_sha256(entry, 32))
