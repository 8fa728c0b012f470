"""A note a user writes in a version's description (MLflow UI) survives the next verdict on the file: edgeproof
rewrites only its own block (review records11 #6: "QA: approved for site A only" was replaced by a what-if run)."""

from __future__ import annotations

import yaml

from edgeproof.tracking import description
from edgeproof.tracking.history import new_tags
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)
from tests.unit.test_tracking_registry_integrity import _run, _verdict

MODEL = "edgeproof-detector"
NOTE = "QA 2026-12-07: approved for site A only. DO NOT ship to site B (see ticket 42)."


def test_a_note_written_in_the_ui_outlives_the_next_verdict(tmp_path, client):  # noqa: F811
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    released = record(files, tmp_path)
    client.update_model_version(MODEL, "1", description=NOTE)  # the UI replaces the whole text
    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 11.0}}}}))
    what_if = record(files, tmp_path)  # an uncommitted threshold: a verdict in the history, nothing registered
    text = client.get_model_version(MODEL, "1").description
    assert text.startswith(NOTE + "\n\n") and what_if["run_id"][:8] in text  # the note, then edgeproof's block
    assert text.endswith(getattr(description, "END", "?")) and released["run_id"][:8] in text

    below = "Signed off by the release manager."
    client.update_model_version(MODEL, "1", description=f"{text}\n\n{below}")  # a line added under the block
    third = record(files, tmp_path)
    text = client.get_model_version(MODEL, "1").description
    assert text.startswith(NOTE) and text.endswith(below) and third["run_id"][:8] in text
    assert text.count(NOTE) == 1 and text.count(description.BEGIN) == 1


def test_the_block_gets_the_room_the_note_leaves():
    from edgeproof.tracking.description import BEGIN, DESCRIPTION_LIMIT, version_description

    tags = {"model_sha256": SHA}
    for i in range(40):
        tags.update(new_tags(tags, _verdict(i), _run(i), "champion" if i == 0 else ""))
    note = "n" * 3000
    text = version_description(note, tags, "7")
    assert len(text) <= DESCRIPTION_LIMIT and text.startswith(note) and f"[{_run(39)[:8]}]" in text
    assert version_description("n" * 4950, tags, "7") is None  # no room: the note is left as it is
    legacy = version_description("Model file sha256 `abc`.\n\nold table", tags, "7")  # edgeproof's, before markers
    assert legacy.startswith(BEGIN) and "old table" not in legacy
