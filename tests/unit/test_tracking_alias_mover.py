"""``model show --alias X``'s ``promoted`` and the version description name the run that put X on the
version now, the one ``alias.<X>.run_id`` names, and say when a rollback put it back since.

``promoted.<alias>.record`` was written only the first time an alias moved to a version: after run A
moved ``champion`` to v1, run B to v2 and run C (looser thresholds) back to v1, ``model show`` and the
description still showed A and its stricter thresholds as the champion's promoter (review "mlview" 2).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np

from edgeproof.cli import main as cli
from edgeproof.io import sha256_file
from edgeproof.tracking.model_show import show
from edgeproof.tracking.rollback import rollback
from tests.conftest import make_fixed_detector
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import GIT, client, git_repo, no_ci_env, record  # noqa: F401

MODEL = "edgeproof-detector"


def _gate(files, sha: str, min_fps: float) -> None:
    rule = {"name": "fps", "op": ">", "threshold": min_fps, "passed": True}
    files.metrics["gate"].write_text(json.dumps({"passed": True, "model_sha256": sha, "failed": [], "rules": [rule]}))
    for name in ("eval", "bench"):
        data = json.loads(files.metrics[name].read_text())
        files.metrics[name].write_text(json.dumps({**data, "model_sha256": sha}))


def _commit(repo) -> None:  # a clean main run each time: each earns champion
    subprocess.run([*GIT, "commit", "-qam", "next run"], cwd=repo, check=True)


def _two_versions(files, tmp_path) -> tuple[bytes, dict, dict]:
    """Run A registers v1 (champion), run B a second file as v2 (champion moves there); the first file's bytes."""
    first_model = files.model.read_bytes()
    _gate(files, SHA, 10.0)
    git_repo(tmp_path)
    a = record(files, tmp_path)  # A: v1, champion
    make_fixed_detector(files.model, np.ones((7, 4), np.float32), 32, {0: "circle"})
    _gate(files, sha256_file(files.model), 10.0)
    _commit(tmp_path)
    b = record(files, tmp_path)  # B: v2 takes champion
    return first_model, a, b


def test_promoted_is_the_run_that_moved_the_alias_there_last(tmp_path, client):  # noqa: F811
    files = make_run_files(tmp_path)
    first_model, a, b = _two_versions(files, tmp_path)
    assert b["model_version"] == "2"
    files.model.write_bytes(first_model)
    _gate(files, SHA, 1.0)
    _commit(tmp_path)
    c = record(files, tmp_path)  # C: v1 again, judged with fps > 1.0, moves champion back
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"

    shown = show(client, MODEL, "champion")
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["alias.champion.run_id"] == c["run_id"] != a["run_id"]
    assert shown["promoted"]["run_id"] == c["run_id"] and shown["promoted"]["thresholds"] == {"fps": "> 1.0"}
    assert [r["threshold"] for r in shown["promoted"]["gate"]["rules"]] == [1.0]  # C's own gate report
    assert tags["promoted.champion.run_id"] == c["run_id"]
    assert shown["promotion"]["run_id"] == a["run_id"]  # the registering run's record stays fixed
    description = client.get_model_version(MODEL, "1").description
    assert f"**Promoted to `champion`** by run [{c['run_id'][:8]}]" in description
    assert f"**Promoted to `champion`** by run [{a['run_id'][:8]}]" not in description

    _gate(files, SHA, 20.0)
    _commit(tmp_path)
    record(files, tmp_path)  # D: v1 holds champion already: D moves nothing, C stays its mover
    assert show(client, MODEL, "champion")["promoted"]["run_id"] == c["run_id"]
    assert "rollback" not in show(client, MODEL, "champion")["promoted"]

    rollback(client, MODEL, "champion")  # back to v2, which B moved it to
    shown = show(client, MODEL, "champion")
    assert shown["version"] == "2" and shown["promoted"]["run_id"] == b["run_id"]
    assert shown["promoted"]["rollback"].startswith("back on this version by a rollback from version 1 at ")


def test_a_rollback_is_in_the_version_description_at_once_and_leaves_it_with_the_next_move(tmp_path, client):  # noqa: F811
    """`model show` said "back on this version by a rollback" at once; the description only from the
    version's next verdict on. A later run moving the alias back there left that note in the description."""
    files = make_run_files(tmp_path)
    first_model, a, _b = _two_versions(files, tmp_path)

    assert cli(["--params", str(files.params), "model", "rollback"]) == 0  # back to v1
    description = client.get_model_version(MODEL, "1").description
    assert "; back on this version by a rollback from version 2 at " in description
    assert (
        f"**Promoted to `champion`** by run [{a['run_id'][:8]}](#/experiments/{a['experiment_id']}/runs/" in description
    )
    assert cli(["--params", str(files.params), "model", "rollback", "--to", "2"]) == 0  # a rollback by --to
    assert "; back on this version by a rollback from version 1 at " in client.get_model_version(MODEL, "2").description

    files.model.write_bytes(first_model)
    _gate(files, SHA, 1.0)
    _commit(tmp_path)
    c = record(files, tmp_path)  # C moves champion to v1 again: no rollback put it there this time
    description = client.get_model_version(MODEL, "1").description
    assert f"**Promoted to `champion`** by run [{c['run_id'][:8]}]" in description
    assert "by a rollback" not in description and "rollback" not in show(client, MODEL, "champion")["promoted"]


def test_show_warns_when_the_run_that_moved_the_alias_never_finished(tmp_path, client, caplog):  # noqa: F811
    """A send killed right after it moved champion leaves its run RUNNING (interrupt12 finding 3): model
    show must not present that move as settled (the replay deletes the attempt and its version)."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    sent = record(files, tmp_path)
    assert show(client, MODEL, "champion")["promoted"].get("unsettled") is None  # a finished send: nothing to say
    client.update_run(sent["run_id"], status="RUNNING")  # as left by a kill between move_alias and set_terminated

    with caplog.at_level("WARNING"):
        shown = show(client, MODEL, "champion")

    assert sent["run_id"] in shown["promoted"]["unsettled"] and "RUNNING" in shown["promoted"]["unsettled"]
    warning = next(r.getMessage() for r in caplog.records if "did not finish" in r.getMessage())
    assert f"{MODEL}@champion: version 1" in warning and "track replay" in warning
