"""Moving a registry alias back: to its previous holder (skipping versions deleted since, and versions a device
failed unless forced), or to a version named with ``--to``. A rollback is remembered on the version it lands on
(:data:`~edgeproof.tracking.aliases.ROLLBACK_TAG`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edgeproof.tracking.aliases import (
    HELD_TAG,
    ROLLBACK_TAG,
    alias_history,
    alias_holder,
    move_alias,
    set_history,
    version_exists,
    when,
)
from edgeproof.tracking.promotion import promotion

log = logging.getLogger(__name__)


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
    unless ``force``); return the move. A version ``held_back`` names reasons against (a device failed
    its file, or older code registered it from a hand-gated run) is no target unless ``force``: ``to`` is
    refused, an earlier holder skipped with a warning. Errors name the versions there are to choose from."""
    current = alias_holder(client, name, alias)
    before = None if current is None else str(current.version)
    if to is not None:
        return _rollback_to(client, name, alias, to, current, force, held_back)
    earlier = alias_history(client, name, alias)
    kept, skipped, held = list(earlier), [], {}
    while earlier:
        last = earlier.pop()
        if last != before and not version_exists(client, name, last):
            skipped.append(last)
        elif last != before:
            held[last] = held_back(client.get_model_version(name, last))
            if force or not held[last]:
                break
    else:  # none left: the held-back versions stay in the history for a rollback with --force
        set_history(client, name, alias, [v for v in kept if held.get(v)])
        raise _no_earlier(client, name, alias, skipped, held)
    to, forced = last, held.pop(last)
    if forced:
        log.warning("%s@%s: version %s is held back (verdicts on its file that did not pass, or a run older code "
                    "called clean): %s (--force given: moving it)",
                    name, alias, to, "; ".join(forced))  # fmt: skip
    client.set_registered_model_alias(name, alias, to)
    client.set_model_version_tag(name, to, HELD_TAG.format(alias=alias), str(int(time.time() * 1000)))
    _mark_rollback(client, name, alias, to, before)
    set_history(client, name, alias, earlier)
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
    refused = f"; skipped as held back ({refused}; --force to roll back there all the same)" if refused else ""
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
    if not version_exists(client, name, to):
        raise _no_such_version(client, name, alias, to)
    version = client.get_model_version(name, to)
    why = _never_held(client, name, alias, version, current)
    held = held_back(version)
    if held:
        why = (
            f"{name}@{alias}: version {to} is held back: {'; '.join(held)}; a rollback goes to a version no device "
            "failed and a clean run registered. Pass --force to move it there all the same"
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
    note = f"from version {before or 'none'} at {when(int(time.time() * 1000))}"
    client.set_model_version_tag(name, to, ROLLBACK_TAG.format(alias=alias), note)
