"""A version a device failed is flagged by ``model show`` and is no rollback target without ``--force``
(review records11 #3: champion stayed on, and `model rollback` moved it onto, files whose latest
jetson-orin-nano verdict failed, while the docs said `model show` never shows such a champion)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edgeproof.cli import main as cli
from edgeproof.io import sha256_file
from edgeproof.tracking.device_verdict import log_device_verdicts
from tests.conftest import make_fixed_detector
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_alias_mover import _commit, _gate, _two_versions
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)

MODEL, DEVICE = "edgeproof-detector", "jetson-orin-nano"


def _device(client, sha: str, verdict: str) -> None:  # noqa: F811
    """The device job's call (`ci/device_gate.py --mlflow --move-alias`) with a report on the file ``sha``."""
    report = {"verdict": verdict, "passed": verdict == "pass", "failed": [] if verdict == "pass" else ["fps"],
              "model_sha256": sha, "measured": {"fps_e2e": 3.0}}  # fmt: skip
    uri = client.tracking_uri
    log_device_verdicts({DEVICE: report}, Path("no-results"), move_alias_on_pass=True, experiment="unit", uri=uri)


def _cli(files, *args: str) -> int:
    return cli(["--params", str(files.params), "model", *args])


def test_a_champion_a_device_failed_is_flagged_and_never_a_rollback_target(tmp_path, client, capsys, caplog):  # noqa: F811
    files = make_run_files(tmp_path)
    _two_versions(files, tmp_path)  # v1 (SHA), then v2 (another file) champion
    second = sha256_file(files.model)
    for sha in (SHA, second):  # the device fails both files, champion's too
        _device(client, sha, "fail")
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert _cli(files, "show") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["held_back"]) == ("2", [f"{DEVICE}: failed: fps"])  # the champion, flagged
    assert f"{MODEL}@champion: version 2 is held back: {DEVICE}: failed: fps" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert _cli(files, "rollback") == 2  # v1, the only earlier holder, was failed by the device too
        assert f"version 1: {DEVICE}: failed: fps; --force to roll back there all the same" in caplog.text
        assert _cli(files, "rollback", "--to", "1") == 2
        assert f"version 1 is held back: {DEVICE}: failed: fps" in caplog.text
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"

    _device(client, SHA, "pass")  # the device passes v1's file again: no longer held back
    capsys.readouterr()
    assert _cli(files, "rollback") == 0
    assert json.loads(capsys.readouterr().out)["to"] == "1"
    assert _cli(files, "rollback", "--to", "2") == 2  # v2 is still held back
    assert _cli(files, "rollback", "--to", "2", "--force") == 0
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"


def test_a_rollback_skips_a_version_a_device_failed(tmp_path, client, capsys, caplog):  # noqa: F811
    files = make_run_files(tmp_path)
    _two_versions(files, tmp_path)
    second = sha256_file(files.model)
    make_fixed_detector(files.model, np.full((7, 4), 2.0, np.float32), 32, {0: "circle"})
    _gate(files, sha256_file(files.model), 10.0)
    _commit(tmp_path)
    assert record(files, tmp_path)["model_version"] == "3"  # champion: v1, v2, now v3
    _device(client, second, "fail")
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert _cli(files, "rollback") == 0
    moved = json.loads(capsys.readouterr().out)
    assert (moved["from"], moved["to"]) == ("3", "1")  # v2, the previous holder, is skipped
    assert moved["skipped_held_back"] == {"2": [f"{DEVICE}: failed: fps"]}
    assert "skipped version 2 of its history" in caplog.text
