"""Registry aliases: which version holds ``champion``/``candidate``, moving them, rolling them back.

Every move is remembered on the registered model so :func:`rollback` can undo it, skipping versions
deleted since. The version an alias points at carries the end time of the record that moved it
there (or of the rollback), so an older record replayed late never takes the alias back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edgeproof.tracking.promotion import promotion

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


def _set_history(client: Any, name: str, alias: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), ",".join(history[-_MAX_HISTORY:]))


def held_since(version: Any, alias: str) -> int | None:
    """When ``alias`` was moved to ``version`` (ms), by the record's own clock; ``None`` if unknown."""
    value = (version.tags or {}).get(HELD_TAG.format(alias=alias))
    return int(value) if value and value.isdigit() else None


def newer_than_holder(client: Any, name: str, alias: str, version: str, at_ms: int | None) -> bool:
    """Whether a record that ended at ``at_ms`` may move ``alias`` to ``version``: not when the current
    holder got it from a newer record (or a rollback since), e.g. an old record replayed from an
    outbox after a newer model was released; that is a warning, not an error."""
    current = alias_holder(client, name, alias)
    since = None if current is None or str(current.version) == version else held_since(current, alias)
    if since is not None and since > time.time() * 1000 + CLOCK_ALLOWANCE_MS:  # written before times were checked
        log.warning("%s@%s: version %s holds it since %s, a time still to come; not counted", name, alias,
                    current.version, _when(since))  # fmt: skip
        since = None
    if since is None or (at_ms is not None and at_ms >= since):
        return True
    log.warning(
        "%s@%s stays on version %s: it was moved there by a newer record (%s) than this one (%s), "
        "e.g. an old record replayed from the outbox; version %s is recorded without the alias",
        name,
        alias,
        current.version,
        _when(since),
        _when(at_ms),
        version,
    )
    return False


def _when(ms: int | None) -> str:
    return "time unknown" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def move_alias(
    client: Any, name: str, alias: str, version: str, at_ms: int | None = None, run_id: str | None = None
) -> None:
    """Point ``alias`` at ``version``, remembering the previous holder for :func:`rollback` and, on
    the version, when the decision was made (``at_ms``: the record's own end time; now by default),
    which a replayed older record cannot override (:func:`newer_than_holder`), and which run made it
    (``run_id``, for :func:`undo_move`). The alias itself is set last: a failure before it leaves the
    alias where it was (a history entry added just before names the holder still: rollback skips it)."""
    current = alias_holder(client, name, alias)
    at_ms = int(time.time() * 1000) if at_ms is None else at_ms
    same = current is not None and str(current.version) == version
    if same:  # the same decision again: keep the newest time (and the run that moved it there)
        at_ms = max(at_ms, held_since(current, alias) or 0)
    client.set_model_version_tag(name, version, HELD_TAG.format(alias=alias), str(at_ms))
    if same:
        return
    if run_id:
        client.set_model_version_tag(name, version, MOVER_TAG.format(alias=alias), run_id)
    if ROLLBACK_TAG.format(alias=alias) in (client.get_model_version(name, version).tags or {}):
        client.delete_model_version_tag(name, version, ROLLBACK_TAG.format(alias=alias))
    if current is not None:
        _set_history(client, name, alias, [*alias_history(client, name, alias), str(current.version)])
    client.set_registered_model_alias(name, alias, version)
    log.info("alias %s of %s -> version %s", alias, name, version)


def undo_move(client: Any, name: str, alias: str, version: str) -> str | None:
    """Move ``alias`` off ``version`` back to its previous holder that still exists (the alias
    history's last entry, consumed), or remove it when there is none: the run that moved it there
    failed. Returns the version it points at now."""
    earlier = alias_history(client, name, alias)
    while earlier and (earlier[-1] == version or not _exists(client, name, earlier[-1])):
        earlier.pop()
    back = earlier.pop() if earlier else None
    if back is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, back)
    _set_history(client, name, alias, earlier)
    log.warning("%s@%s: the run that moved it to version %s failed; back to %s", name, alias, version, back or "none")
    return back


def _exists(client: Any, name: str, version: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        if is_missing(exc):
            return False
        raise
    return True


def _versions(client: Any, name: str) -> list[str]:
    numbers = {int(v.version) for v in client.search_model_versions(f"name = '{name}'")}
    return [str(n) for n in sorted(numbers)]


def _no_such_version(client: Any, name: str, alias: str, wanted: str) -> ValueError:
    choices = _versions(client, name)
    hint = f"choose one with --to: {', '.join(choices)}" if choices else "the model has no versions"
    return ValueError(f"{name}@{alias}: version {wanted} does not exist (any more); {hint}")


def _never_held(client: Any, name: str, alias: str, version: Any, current: Any) -> str | None:
    """Why ``version`` is no version to roll ``alias`` back to: it never held it (not in the alias
    history, not moved there by a record, a rollback or a move); ``None`` when it did."""
    number, tags = str(version.version), version.tags or {}
    holders = [*alias_history(client, name, alias), *([str(current.version)] if current is not None else [])]
    if number in holders or f"promoted.{alias}.run_id" in tags or HELD_TAG.format(alias=alias) in tags:
        return None
    promoted = promotion(tags) or {}
    origin = promoted.get("origin") or "unknown origin"
    provenance = promoted.get("provenance") or "unknown"
    return (
        f"{name}@{alias}: version {number} never held {alias} (it came from {origin}; provenance: {provenance}); "
        f"a rollback goes back to a version that did: {', '.join(dict.fromkeys(holders)) or 'none'}. "
        "Pass --force to move it there all the same"
    )


def rollback(
    client: Any,
    name: str,
    alias: str,
    to: str | None = None,
    force: bool = False,
    held_back: Callable[[Any], list[str]] = lambda version: [],
) -> dict[str, Any]:
    """Move ``alias`` back to the latest earlier holder that still exists (history entries are
    consumed; deleted versions are skipped and named), or to version ``to`` (a move like any other,
    itself undoable; refused for a version that never held the alias, e.g. an experiment's candidate,
    unless ``force``); return the move. A version ``held_back`` names verdicts against (a device failed
    its file) is no target unless ``force``: ``to`` is refused, an earlier holder skipped with a warning.
    Errors name the versions there are to choose from."""
    current = alias_holder(client, name, alias)
    before = None if current is None else str(current.version)
    if to is not None:
        return _rollback_to(client, name, alias, to, current, force, held_back)
    earlier = alias_history(client, name, alias)
    kept, skipped, held = list(earlier), [], {}
    while earlier:
        last = earlier.pop()
        if last != before and not _exists(client, name, last):
            skipped.append(last)
        elif last != before:
            held[last] = held_back(client.get_model_version(name, last))
            if force or not held[last]:
                break
    else:  # none left: the held-back versions stay in the history for a rollback with --force
        _set_history(client, name, alias, [v for v in kept if held.get(v)])
        raise _no_earlier(client, name, alias, skipped, held)
    to, forced = last, held.pop(last)
    if forced:
        log.warning("%s@%s: version %s holds verdicts on its file that did not pass: %s (--force given: moving it)",
                    name, alias, to, "; ".join(forced))  # fmt: skip
    client.set_registered_model_alias(name, alias, to)
    client.set_model_version_tag(name, to, HELD_TAG.format(alias=alias), str(int(time.time() * 1000)))
    _mark_rollback(client, name, alias, to, before)
    _set_history(client, name, alias, earlier)
    if skipped:
        log.warning("%s@%s: skipped version(s) %s of its history, deleted since", name, alias, ", ".join(skipped))
    for version, why in held.items():
        log.warning("%s@%s: skipped version %s of its history: %s (--force to roll back there all the same)",
                    name, alias, version, "; ".join(why))  # fmt: skip
    log.info("alias %s of %s rolled back: version %s -> %s", alias, name, before, to)
    return {"name": name, "alias": alias, "from": before, "to": to, "skipped_deleted": skipped,
            "skipped_held_back": held}  # fmt: skip


def _no_earlier(client: Any, name: str, alias: str, deleted: list[str], held: dict[str, list[str]]) -> ValueError:
    """The error of a rollback that found no earlier holder to go to, naming the versions skipped and the choices."""
    gone = f" (deleted since: {', '.join(deleted)})" if deleted else ""
    refused = "; ".join(f"version {v}: {'; '.join(why)}" for v, why in held.items())
    refused = (
        f"; skipped as a device failed its file ({refused}; --force to roll back there all the same)" if refused else ""
    )
    choices = ", ".join(_versions(client, name)) or "none"
    left = "its alias history holds no other" if refused else "its alias history is empty"
    return ValueError(
        f"{name}@{alias}: no earlier version to roll back to{gone}{refused}; {left} (versions: {choices}; use --to)"
    )


def _rollback_to(
    client: Any, name: str, alias: str, to: str, current: Any, force: bool, held_back: Callable[[Any], list[str]]
) -> dict[str, Any]:
    """``rollback --to``: a move like any other, refused (unless ``force``) for a version that never held
    the alias or one ``held_back`` names verdicts against."""
    before = None if current is None else str(current.version)
    if not _exists(client, name, to):
        raise _no_such_version(client, name, alias, to)
    version = client.get_model_version(name, to)
    why = _never_held(client, name, alias, version, current)
    held = held_back(version)
    if held:
        why = (
            f"{name}@{alias}: version {to} holds verdicts on its file that did not pass: {'; '.join(held)}; "
            "a rollback goes to a version no device failed. Pass --force to move it there all the same"
        )
    if why and not force:
        raise ValueError(why)
    if why:
        log.warning("%s (--force given: moving it)", why.split(";")[0])
    move_alias(client, name, alias, to)
    _mark_rollback(client, name, alias, to, before)
    return {"name": name, "alias": alias, "from": before, "to": to, "forced": bool(why)}


def _mark_rollback(client: Any, name: str, alias: str, to: str, before: str | None) -> None:
    """Note on version ``to`` that a rollback (from ``before``) put ``alias`` there (:data:`ROLLBACK_TAG`)."""
    note = f"from version {before or 'none'} at {_when(int(time.time() * 1000))}"
    client.set_model_version_tag(name, to, ROLLBACK_TAG.format(alias=alias), note)
