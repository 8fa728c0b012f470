"""Stores and outbox records made by older code, read by today's (review upgrade12 #1-#2): a champion promoted
before ``alias.<alias>.since_ms`` existed, and hand-gated runs that older code called ``provenance: clean``.

The versions are written with the tags 2532349's and db832ea's code wrote (checked on their stores)."""

from __future__ import annotations

import json
import logging

import pytest

from edgeproof.tracking.aliases import move_alias
from edgeproof.tracking.held_back import held_back
from edgeproof.tracking.record_check import checked_alias
from edgeproof.tracking.rollback import rollback
from tests.unit.test_tracking_registry import client  # noqa: F401 (fixture)

MODEL = "edgeproof-detector"
HAND = "gated by hand by code from before 2026-12-07 (its verdict is keyed 'build'"
PROMOTED_MS = 1_796_683_203_910  # 2026-12-07 22:40:03, v1's promotion in the 2532349 store


def _old_version(client, sha: str, profile: str, at_ms: int, run_id: str) -> str:  # noqa: F811
    """A version as 2532349's code registered it: promotion tags shown, one numbered history entry, and
    ``promoted.champion.run_id`` but no ``alias.champion.since_ms``."""
    if not client.search_registered_models(f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    entry = {"at_ms": at_ms, "commit": "f" * 40, "origin": "branch main@fffffff", "provenance": "clean",
             "run_id": run_id, "thresholds": {"fps": ">= 10.0"}, "verdicts": {profile: "passed"}}  # fmt: skip
    tags = {"model_sha256": sha, f"gate.{profile}": "passed", "history.0001": json.dumps(entry, sort_keys=True),
            "promotion.run_id": run_id, "promotion.provenance": "clean", "promotion.origin": "branch main@fffffff",
            "promotion.commit": "f" * 40, "promotion.thresholds": '{"fps": ">= 10.0"}', "runs": run_id,
            "promoted.champion.run_id": run_id, "promoted.champion.origin": "branch main@fffffff"}  # fmt: skip
    return str(client.create_model_version(MODEL, source="s3://old-store/model", tags=tags).version)


def test_an_older_record_does_not_take_champion_from_a_holder_promoted_before_holder_times(client, caplog):  # noqa: F811
    """2532349's code promoted v1 at 22:40:03 without a holder time; an outbox record that ended 22:33:26,
    replayed by today's code, moved champion to its own version."""
    one = _old_version(client, "a" * 64, "cpu-ci", PROMOTED_MS, "run-1")
    client.set_registered_model_alias(MODEL, "champion", one)
    two = _old_version(client, "b" * 64, "cpu-ci", PROMOTED_MS - 397_548, "run-2")
    client.delete_model_version_tag(MODEL, two, "promoted.champion.run_id")
    with caplog.at_level(logging.WARNING):
        assert move_alias(client, MODEL, "champion", two, at_ms=PROMOTED_MS - 397_548, run_id="run-2") is False
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == one
    assert "holds it without a holder time (moved there by older code); taking 2026-12-07 22:40:03 UTC" in caplog.text
    assert move_alias(client, MODEL, "champion", two, at_ms=PROMOTED_MS + 1000, run_id="run-3") is True  # newer
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == two


def test_a_rollback_skips_a_version_older_code_registered_from_a_hand_gated_run(client, caplog):  # noqa: F811
    """db832ea's code: v1 pipeline (cpu-ci), v2 a hand gate of fp32 (verdict keyed `build`, called clean), v3
    pipeline. `model rollback` moved champion from v3 to the hand-gated v2."""
    one = _old_version(client, "a" * 64, "cpu-ci", PROMOTED_MS, "run-1")
    two = _old_version(client, "b" * 64, "build", PROMOTED_MS + 60_000, "run-2")
    three = _old_version(client, "c" * 64, "cpu-ci", PROMOTED_MS + 120_000, "run-3")
    client.set_registered_model_alias(MODEL, "champion", three)
    client.set_registered_model_tag(MODEL, "edgeproof.alias_history.champion", f"{one},{two}")
    assert held_back(client.get_model_version(MODEL, one).tags, "cpu-ci") == []
    flagged = held_back(client.get_model_version(MODEL, two).tags, "cpu-ci")
    assert len(flagged) == 1 and flagged[0].startswith(f"registered by a run {HAND}")  # `model show` lists it

    def check(version):
        return held_back(dict(version.tags), "cpu-ci")

    with caplog.at_level(logging.WARNING):
        moved = rollback(client, MODEL, "champion", held_back=check)
    assert moved["to"] == one and list(moved["skipped_held_back"]) == [two]
    assert f"skipped version {two} of its history: registered by a run gated by hand" in caplog.text
    with pytest.raises(ValueError, match=f"version {two} is held back: registered by a run gated by hand"):
        rollback(client, MODEL, "champion", to=two, held_back=check)
    assert rollback(client, MODEL, "champion", to=two, force=True, held_back=check)["to"] == two  # --force


def _outbox_record(tmp_path, verdict_key: str, **extra) -> tuple:
    record = {"provenance": "clean", "passed": True, "alias": "champion",
              "tags": {"provenance": "clean", "git_dirty": "false", "branch": "main", "pull_request": "false"},
              "verdicts": {verdict_key: {"passed": True, "verdict": "pass", "failed": []}}, **extra}  # fmt: skip
    return tmp_path, record


def test_a_replayed_hand_gated_record_older_code_called_clean_registers_nothing(tmp_path, caplog):
    """db832ea's outbox record of `gate --model fp32 --eval /tmp/.. --bench /tmp/..` (`verdicts: {build: ..}`,
    `provenance: clean`) registered v1 and made it champion when replayed."""
    folder, record = _outbox_record(tmp_path, "build")
    with caplog.at_level(logging.WARNING):
        assert checked_alias(folder, record, [], None) == ""
    assert record["provenance"] == record["tags"]["provenance"] and record["provenance"].startswith(
        f"not clean: {HAND}"
    )
    assert "sent as not clean (logged, registers nothing, moves no alias)" in caplog.text
    _, piped = _outbox_record(tmp_path, "cpu-ci")  # the same code's pipeline run (--release): champion
    assert checked_alias(folder, piped, [], None) == "champion" and piped["provenance"] == "clean"
    _, today = _outbox_record(tmp_path, "build", provenance_rules="hand-run,judged-files")  # today's record
    assert checked_alias(folder, today, [], None) == "champion"  # its provenance already met today's rules


def test_model_show_gives_the_promotion_record_of_the_run_that_registered_and_promoted_the_holder(client):  # noqa: F811
    """/work/main's and 2532349's stores: `promoted` said "no record of a run promoting it to champion" while
    `promotion` was the record of that very run (promoted.champion.run_id == promotion.run_id)."""
    from edgeproof.tracking.model_show import show

    one = _old_version(client, "a" * 64, "cpu-ci", PROMOTED_MS, "run-1")
    client.set_registered_model_alias(MODEL, "champion", one)
    moved = show(client, MODEL, "champion")["promoted"]
    assert moved["run_id"] == "run-1" and moved["verdicts"] == {"cpu-ci": "passed"} and moved["provenance"] == "clean"
    assert moved["note"] == "the promotion record: the run that registered the version moved champion here"
    client.set_model_version_tag(MODEL, one, "promoted.champion.run_id", "run-9")  # another run moved it: no record
    assert show(client, MODEL, "champion")["promoted"] == {
        "run_id": "run-9", "note": "no record of a run promoting it to champion"}  # fmt: skip
