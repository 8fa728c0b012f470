"""Registry aliases: which version holds ``champion``/``candidate``, and moving them.

Every move is remembered on the registered model so a rollback (:mod:`edgeproof.tracking.rollback`) can
undo it, skipping versions deleted since. The version an alias points at carries the end time of the
record that moved it there (or of the rollback), so an older record replayed late never takes the alias
back, nor one whose sender moved it during a newer record's move (:func:`move_alias`).
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from typing import Any

from edgeproof.tracking.history_keys import history_keys, parse_entry

log = logging.getLogger(__name__)

HISTORY_TAG = "edgeproof.alias_history.{alias}"
HELD_TAG = "alias.{alias}.since_ms"
"""Version tag: end time (ms) of the record that last moved ``alias`` to the version, or of the rollback."""
MOVER_TAG = "alias.{alias}.run_id"
"""Version tag: the run that last moved ``alias`` to the version, so a failed run's move can be undone."""
ROLLBACK_TAG = "alias.{alias}.rollback"
"""Version tag: how a rollback put ``alias`` back on the version (``from version 4 at <time>``), so its
``promoted.<alias>.*`` (the run that moved it there before) is not taken for the current placement's
mover; any later move of the alias to the version clears it."""
_MAX_HISTORY = 50
CLOCK_ALLOWANCE_MS = 5 * 60 * 1000
"""How far a time may lie ahead of the clock it is checked against (clocks drift a little)."""


def is_missing(exc: Exception) -> bool:
    """Whether an MLflow error says the model, version or alias does not exist."""
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


def alias_holder(client: Any, name: str, alias: str) -> Any | None:
    """The version ``alias`` points at, or ``None``."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if is_missing(exc) or "alias" in str(exc).lower():
            return None
        raise


def alias_history(client: Any, name: str, alias: str) -> list[str]:
    """The versions ``alias`` pointed at before, oldest first (what :func:`rollback` goes back to)."""
    tag = client.get_registered_model(name).tags.get(HISTORY_TAG.format(alias=alias), "")
    return [v for v in tag.split(",") if v]


def set_history(client: Any, name: str, alias: str, history: list[str]) -> None:
    """Store ``alias``'s earlier holders (oldest first; the last :data:`_MAX_HISTORY` kept)."""
    client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), ",".join(history[-_MAX_HISTORY:]))


def held_since(version: Any, alias: str) -> int | None:
    """When ``alias`` was moved to ``version`` (ms), by the record's own clock; ``None`` if unknown."""
    value = (version.tags or {}).get(HELD_TAG.format(alias=alias))
    return int(value) if value and value.isdigit() else None


def derived_since(version: Any, alias: str) -> int | None:
    """A holder time for a version that code from before :data:`HELD_TAG` moved ``alias`` to: the newest
    of its history entries' run ends (``at_ms``) and of the time its rollback note gives; else its creation.

    The refusal rule lets a record move the alias only if it ended no earlier than the holder's time,
    so a derived time EARLIER than the true one would let a record older than the move take the alias
    (the bug this fixes, where no time at all let every record win). The record that moved the alias
    there is one of the version's own history entries (or a rollback, noted with its time), so the
    newest of them is never earlier than the true time: at worst later (an experiment's verdict on the
    same file since), which refuses a record ending in between, a warning, never an older record winning."""
    tags = version.tags or {}
    times = [e.get("at_ms") for e in (parse_entry(tags[k]) for k in history_keys(tags)) if e is not None]
    rolled = re.search(r" at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", tags.get(ROLLBACK_TAG.format(alias=alias), ""))
    if rolled:
        times.append(int(calendar.timegm(time.strptime(rolled.group(1), "%Y-%m-%d %H:%M:%S")) * 1000))
    known = [t for t in times if isinstance(t, int) and not isinstance(t, bool)]
    created = getattr(version, "creation_timestamp", None)
    return max(known) if known else (created if isinstance(created, int) else None)


def newer_than_holder(client: Any, name: str, alias: str, version: str, at_ms: int | None) -> bool:
    """Whether a record that ended at ``at_ms`` may move ``alias`` to ``version``: not when the current
    holder got it from a newer record (or a rollback since), e.g. an old record replayed from an
    outbox after a newer model was released; that is a warning, not an error."""
    return _newer_than(alias_holder(client, name, alias), name, alias, version, at_ms)


def _newer_than(current: Any, name: str, alias: str, version: str, at_ms: int | None) -> bool:
    """:func:`newer_than_holder` against ``current``, the holder as just read."""
    since = None if current is None or str(current.version) == version else held_since(current, alias)
    if since is not None and since > time.time() * 1000 + CLOCK_ALLOWANCE_MS:  # written before times were checked
        log.warning("%s@%s: version %s holds it since %s, a time still to come; not counted", name, alias,
                    current.version, when(since))  # fmt: skip
        since = None
    if since is None and current is not None and str(current.version) != version:
        since = derived_since(current, alias)
        log.warning("%s@%s: version %s holds it without a holder time (moved there by older code); taking %s, "
                    "derived from its own records", name, alias, current.version, when(since))  # fmt: skip
    if since is None or (at_ms is not None and at_ms >= since):
        return True
    log.warning(
        "%s@%s stays on version %s: it was moved there by a newer record (%s) than this one (%s), "
        "e.g. an old record replayed from the outbox; version %s is recorded without the alias",
        name,
        alias,
        current.version,
        when(since),
        when(at_ms),
        version,
    )
    return False


def when(ms: int | None) -> str:
    """A time in ms as a UTC date and time, for messages."""
    return "time unknown" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def move_alias(
    client: Any, name: str, alias: str, version: str, at_ms: int | None = None, run_id: str | None = None
) -> bool:
    """Point ``alias`` at ``version``, remembering the previous holder for a rollback and, on
    the version, when the decision was made (``at_ms``: the record's own end time; now by default),
    which a replayed older record cannot override (:func:`newer_than_holder`), and which run made it
    (``run_id``, for :func:`undo_move`). The alias itself is set last: a failure before it leaves the
    alias where it was (a history entry added just before names the holder still: rollback skips it).

    A move by a record's time (``at_ms`` given) is ordered against other senders' moves: the holder is
    read again here (another record may have moved it since the caller checked) and, once the alias is
    set, a version a newer record moved it to meanwhile gets it back (:func:`_yield_to_newer`). Returns
    False when this move gave way so; True otherwise."""
    checked = at_ms is not None
    before = _held_times(client, name, alias) if checked else {}
    running = _sending(client, name, alias, before, at_ms) if checked else set()
    current = alias_holder(client, name, alias)
    at_ms = int(time.time() * 1000) if at_ms is None else at_ms
    if current is not None and str(current.version) == version:  # the same decision again: the newest time
        since = max(at_ms, held_since(current, alias) or 0)
        client.set_model_version_tag(name, version, HELD_TAG.format(alias=alias), str(since))
        return True
    if checked and not _newer_than(current, name, alias, version, at_ms):
        return False
    if run_id:  # before the time: a sender that sees this version's new time sees which run is sending it
        client.set_model_version_tag(name, version, MOVER_TAG.format(alias=alias), run_id)
    client.set_model_version_tag(name, version, HELD_TAG.format(alias=alias), str(at_ms))
    if ROLLBACK_TAG.format(alias=alias) in (client.get_model_version(name, version).tags or {}):
        client.delete_model_version_tag(name, version, ROLLBACK_TAG.format(alias=alias))
    if current is not None:
        set_history(client, name, alias, [*alias_history(client, name, alias), str(current.version)])
    client.set_registered_model_alias(name, alias, version)
    log.info("alias %s of %s -> version %s", alias, name, version)
    return not (checked and _yield_to_newer(client, name, alias, version, at_ms, before, running))


def _held_times(client: Any, name: str, alias: str) -> dict[str, int]:
    """Each version's holder time of ``alias`` (:data:`HELD_TAG`), by version."""
    versions = client.search_model_versions(f"name = '{name}'")
    return {str(v.version): t for v in versions if (t := held_since(v, alias)) is not None}


def _sending(client: Any, name: str, alias: str, held: dict[str, int], at_ms: int) -> set[str]:
    """The versions holding a time newer than ``at_ms`` whose mover's run is still RUNNING: a send that
    has written its time (after its mover) and may be about to set the alias."""
    from mlflow.exceptions import MlflowException

    out = set()
    for number in (v for v, t in held.items() if t > at_ms):
        mover = (client.get_model_version(name, number).tags or {}).get(MOVER_TAG.format(alias=alias))
        try:
            if mover and client.get_run(mover).info.status == "RUNNING":
                out.add(number)
        except MlflowException:  # a deleted run sends nothing
            continue
    return out


def _yield_to_newer(
    client: Any, name: str, alias: str, version: str, at_ms: int, before: dict[str, int], running: set[str]
) -> bool:
    """After moving ``alias`` to ``version`` by a record that ended at ``at_ms``: if it still holds it but a
    newer record moved it to another version during this move (that version's holder time newer than
    ``at_ms`` and written since ``before`` was read, or its mover was still sending then, ``running``),
    give the alias to the newest such version, as the two senders' checks would have had they run one
    after the other. A holder time left from before (a version rolled back since) is not such a move."""
    holder = alias_holder(client, name, alias)
    if holder is None or str(holder.version) != version:
        return False  # moved on since: that mover's own checks decide
    ceiling = time.time() * 1000 + CLOCK_ALLOWANCE_MS
    newer = {
        v: t
        for v, t in _held_times(client, name, alias).items()
        if v != version and at_ms < t <= ceiling and (before.get(v) != t or v in running)
    }
    if not newer:
        return False
    back = max(newer, key=lambda v: newer[v])
    client.set_registered_model_alias(name, alias, back)
    log.warning("%s@%s: a newer record (%s) moved it to version %s during this move (%s) to version %s; back to %s",
                name, alias, when(newer[back]), back, when(at_ms), version, back)  # fmt: skip
    return True


def undo_move(client: Any, name: str, alias: str, version: str) -> str | None:
    """Move ``alias`` off ``version`` back to its previous holder that still exists (the alias
    history's last entry, consumed), or remove it when there is none: the run that moved it there
    failed. Returns the version it points at now."""
    earlier = alias_history(client, name, alias)
    while earlier and (earlier[-1] == version or not version_exists(client, name, earlier[-1])):
        earlier.pop()
    back = earlier.pop() if earlier else None
    if back is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, back)
    set_history(client, name, alias, earlier)
    log.warning("%s@%s: the run that moved it to version %s failed; back to %s", name, alias, version, back or "none")
    return back


def version_exists(client: Any, name: str, version: str) -> bool:
    """Whether version ``version`` of ``name`` exists (not deleted)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        if is_missing(exc):
            return False
        raise
    return True
