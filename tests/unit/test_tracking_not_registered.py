"""A run that registers nothing (inputs not committed) says so, also when its file already has a version:
it logged "registered version 1" and carried ``registered_model_version`` while its verdict only joined
that version's history and no alias moved (review docs12 #1: a `dvc exp branch` checkout gated without
`dvc checkout`, provenance not clean)."""

from __future__ import annotations

import json
import logging

import pytest

from edgeproof.tracking.context import not_registered_reason
from edgeproof.tracking.history import history
from edgeproof.tracking.pipeline import _warn_not_registered
from edgeproof.tracking.verdicts import OLDER_HAND_RUN
from tests.unit.test_tracking import SHA, commit_all, make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)

MODEL = "edgeproof-detector"


def _untracked_input(repo) -> None:
    """A file under a stage's deps that git does not hold: git stays clean, provenance does not."""
    (repo / "data" / "sources" / "new").mkdir(parents=True)
    (repo / "data" / "sources" / "new" / "img.png").write_bytes(b"not committed")


def test_an_unregistered_run_on_a_registered_file_warns_and_is_not_tagged_registered(tmp_path, client, caplog):  # noqa: F811
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    with caplog.at_level(logging.INFO, logger="edgeproof.tracking"):
        released = record(files, tmp_path, candidate_alias="candidate")
    assert released["model_version"] == "1" and "registered version 1" in caplog.text
    assert "registered no version" not in caplog.text
    assert client.get_run(released["run_id"]).data.tags["registered_model_version"] == f"{MODEL}/1"
    aliases = dict(client.get_registered_model(MODEL).aliases)

    _untracked_input(tmp_path)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edgeproof.tracking"):
        dirty = record(files, tmp_path, candidate_alias="candidate")
    assert dirty["model_version"] == "1"  # its verdict is in version 1's history, which it did not register
    assert [e["run_id"] for e in history(client.get_model_version(MODEL, "1").tags)][-1] == dirty["run_id"]
    assert dict(client.get_registered_model(MODEL).aliases) == aliases  # no alias moved
    tags = client.get_run(dirty["run_id"]).data.tags
    why = tags["not_registered_because"]
    assert why == "inputs not committed: provenance not clean: untracked: data/sources/new/img.png"
    assert "registered_model_version" not in tags and tags["verdict_in_history_of"] == f"{MODEL}/1"
    assert "registered version" not in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if dirty["run_id"] in w] == [
        f"MLflow run {dirty['run_id']} registered no version of {MODEL} and moved no alias ({why}); its verdict "
        "was added to the history of version 1; only a run of committed inputs does: commit them and run the "
        "gate stage again (docs/experiments.md)"
    ]


def test_an_unregistered_run_of_a_new_file_warns_why(tmp_path, client, caplog):  # noqa: F811
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    _untracked_input(tmp_path)
    with caplog.at_level(logging.INFO, logger="edgeproof.tracking"):
        sent = record(files, tmp_path)
    assert sent["model_version"] is None and client.search_model_versions(f"name = '{MODEL}'") == []
    tags = client.get_run(sent["run_id"]).data.tags
    assert "registered_model_version" not in tags and "verdict_in_history_of" not in tags
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "registered no version" in w] == [
        f"MLflow run {sent['run_id']} registered no version of {MODEL} and moved no alias "
        f"({tags['not_registered_because']}); only a run of committed inputs does: commit them and run the gate "
        "stage again (docs/experiments.md)"
    ]

    commit_all(tmp_path)  # committed: registered, and said so without a warning
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edgeproof.tracking"):
        released = record(files, tmp_path)
    assert released["model_version"] == "1" and "registered version 1" in caplog.text
    assert "registered no version" not in caplog.text


HAND = "not clean: gated by hand (--model/--eval/--bench), not the release's choice (--release)"


@pytest.mark.parametrize(
    ("provenance", "head", "advice"),
    [
        (HAND, "a hand-gated run: ", "a hand run (--model/--eval/--bench) never registers, whatever is committed"),
        (HAND + "; modified: params.yaml", "a hand-gated run: ", "run the gate stage with --release"),
        (f"not clean: {OLDER_HAND_RUN}", "an older hand-gated record: ", "an older record of a hand run never"),
        ("not clean: untracked: data/sources/new/img.png", "inputs not committed: ", "commit them and run the gate"),
    ],
)
def test_the_warning_and_the_tag_name_the_blocker_and_what_would_register_a_run(provenance, head, advice, caplog):
    """review diff12 #2: every blocker was "inputs not committed", and a hand-gated run (or an older record of
    one) was told "commit them and run the gate stage again", which never makes it register."""
    why = not_registered_reason({"git_dirty": "false", "provenance": provenance})
    assert why == f"{head}provenance {provenance}"
    with caplog.at_level(logging.WARNING, logger="edgeproof.tracking"):
        _warn_not_registered({"run_id": "abc", "model": MODEL, "model_version": "3"}, why)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"MLflow run abc registered no version of {MODEL} and moved no alias ({why}); its ")
    assert advice in warning
    assert ("commit them and run the gate stage again" in warning) == (head == "inputs not committed: ")


@pytest.mark.parametrize(
    ("gate", "label"),
    [
        ({"passed": False, "failed": ["release_choice"]}, "✗ FAILED: release_choice"),
        ({"passed": False, "verdict": "inconclusive", "failed": ["val_identity"]}, "⚠ INCONCLUSIVE: val_identity"),
    ],
)
def test_a_committed_run_that_did_not_pass_says_its_verdict_joined_the_history(tmp_path, client, caplog, gate, label):  # noqa: F811
    """verify12 #7: a committed run that failed (or was inconclusive) on a registered file logged "registered
    version 1" and was tagged ``registered_model_version``, though it only added its verdict to version 1's
    history and moved no alias. It is said at INFO (the gate reported the verdict already), with no warning."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path, candidate_alias="candidate")
    aliases = dict(client.get_registered_model(MODEL).aliases)
    assert aliases  # a committed pass registers and moves an alias

    files.metrics["gate"].write_text(json.dumps({**gate, "model_sha256": SHA}))
    commit_all(tmp_path)  # committed: only the verdict keeps it from registering
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edgeproof.tracking"):
        judged = record(files, tmp_path, candidate_alias="candidate")
    assert judged["model_version"] == "1"
    assert [e["run_id"] for e in history(client.get_model_version(MODEL, "1").tags)][-1] == judged["run_id"]
    assert dict(client.get_registered_model(MODEL).aliases) == aliases  # no alias moved
    said = [r for r in caplog.records if judged["run_id"] in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [
        (
            logging.INFO,
            f"MLflow run {judged['run_id']} in experiment 'unit' (record {judged['record_id']}; registered nothing "
            f"and moved no alias: its verdict ({label}) was added to the history of version 1)",
        )
    ]
    tags = client.get_run(judged["run_id"]).data.tags
    assert "registered_model_version" not in tags and tags["verdict_in_history_of"] == f"{MODEL}/1"
    assert "not_registered_because" not in tags  # its inputs are committed: nothing to commit
    assert "registered version" not in caplog.text and judged["registered"] is False


def test_a_committed_pass_on_a_registered_file_says_it_registered_the_version(tmp_path, client, caplog):  # noqa: F811
    """The other side of verify12 #7: a second committed pass of the same file moves its alias onto version 1,
    which is what registering an already registered file is, and says so as before."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)
    client.delete_registered_model_alias(MODEL, "champion")  # the second pass moves it back
    (tmp_path / "NOTES.md").write_text("a later commit: another run of the same file\n")
    commit_all(tmp_path)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edgeproof.tracking"):
        again = record(files, tmp_path)
    assert f"(record {again['record_id']}, registered version 1)" in caplog.text and again["registered"] is True
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert client.get_run(again["run_id"]).data.tags["registered_model_version"] == f"{MODEL}/1"
