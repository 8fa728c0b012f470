"""What a user sees in MLflow: the model-training view, named and timed runs, the ONNX model and the
dataset as MLflow objects, and the registry as the release record (one version per sha256, aliases,
rollback)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeproof.cli import main as cli
from edgeproof.config import TrackParams
from edgeproof.headline import HEADLINE_KEYS, headline_metrics, write_headline
from edgeproof.io import sha256_file
from edgeproof.tracking.history import history
from edgeproof.tracking.pipeline import record_pipeline_run
from edgeproof.tracking.record import flatten
from edgeproof.tracking.view import KEY_METRICS, VIEW_KEY, VIEW_TAG
from edgeproof.verdict.shown import bench_figures
from tests.conftest import make_fixed_detector
from tests.unit.test_tracking import GIT, SHA, commit_all, git_repo, make_run_files  # noqa: F401 (shared)


@pytest.fixture(autouse=True)
def no_ci_env(monkeypatch):
    """The branch and experiment come from the test's own git repo, not from the CI running it."""
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "DVC_EXP_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def client(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(uri)


def record(files, repo: Path, **track) -> dict:
    result = record_pipeline_run(files, repo, repo / ".state", TrackParams(experiment="unit", **track))
    assert result["pending"] is False, result
    return result["sent"][-1]


def set_gate(files, passed: bool, failed: tuple[str, ...] = ()) -> None:
    files.metrics["gate"].write_text(json.dumps({"passed": passed, "model_sha256": SHA, "failed": list(failed)}))


def test_the_run_as_a_user_sees_it(tmp_path, client, caplog):
    files = make_run_files(tmp_path)
    files.dvc_lock = tmp_path / "dvc.lock"
    out = {"path": "data/prepared", "md5": "cb04c1079153a6c9cc16fce536671162.dir"}
    files.dvc_lock.write_text(yaml.safe_dump({"stages": {"data": {"outs": [out]}}}))
    files.metrics["data"] = tmp_path / "data.json"
    files.metrics["data"].write_text(json.dumps({"source": "synthetic", "classes": ["circle"], "splits": {}}))
    for i, path in enumerate([files.metrics["data"], files.curves, files.model, *files.metrics.values()]):
        os.utime(path, (1_700_000_000 + 60 * i, 1_700_000_000 + 60 * i))
    commit = git_repo(tmp_path)
    old = client.create_experiment("unit")  # made by an older edgeproof: no kind, GenAI view
    with caplog.at_level(logging.INFO):
        sent = record(files, tmp_path)

    tags = client.get_experiment(old).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags[VIEW_TAG])  # the runs table opens with the headline metrics as columns
    assert [c for c in view["selectedColumns"] if c.startswith("metrics.")] == [f"metrics.`{k}`" for k in KEY_METRICS]
    assert view["columnOrder"][2 : 2 + len(KEY_METRICS)] == [f"metrics.`{k}`" for k in KEY_METRICS]  # after the verdict
    assert f"/#/experiments/{old}/runs?viewStateShareKey={VIEW_KEY}&" in caplog.text  # the link edgeproof prints
    run = client.get_run(sent["run_id"])
    assert run.info.run_name == f"main@{commit[:7]}-fp32"
    starts = [p.stat().st_mtime for p in (files.metrics["data"], files.curves, files.model, *files.metrics.values())]
    assert run.info.start_time == int(min(starts) * 1000) and run.info.end_time == int(max(starts) * 1000)
    assert run.info.end_time - run.info.start_time >= 60_000  # the pipeline's span, not the logging's
    assert "| fps | pass |" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["mlflow.source.git.commit"] == commit
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("synthetic-val", "cb04c1079153a6c9cc16fce536671162")

    (output,) = run.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert model.tags["model_sha256"] == SHA and model.source_run_id == run.info.run_id
    assert str(model.status) in ("READY", "LoggedModelStatus.READY")
    local = Path(client.download_artifacts(run.info.run_id, ".", str(tmp_path / "dl")))  # run artifacts
    assert (local / "reports" / "gate.json").exists()
    import mlflow.onnx
    import mlflow.pyfunc
    from mlflow.models import Model

    model_uri = f"models:/{output.model_id}"
    meta = Model.load(model_uri)
    assert meta.flavors["onnx"]["providers"] == ["CPUExecutionProvider"]
    assert [s.name for s in meta.signature.inputs.inputs] == ["images"]
    assert meta.signature.inputs.inputs[0].shape == (-1, 3, 32, 32)
    model_dir = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "m")))
    assert sha256_file(model_dir / "model.onnx") == SHA  # the gated bytes, not a re-serialization
    prediction = mlflow.pyfunc.load_model(model_uri).predict({"images": np.zeros((1, 3, 32, 32), np.float32)})
    assert prediction["output0"].shape == (1, 7, 4)

    version = client.get_model_version_by_alias("edgeproof-detector", "champion")  # clean main: released
    assert str(version.version) == "1" and version.source == model_uri and version.tags["model_sha256"] == SHA
    assert version.tags["gate.build"] == "passed" and run.info.run_id in version.description


def test_one_version_per_model_file_aliases_and_rollback(tmp_path, client, capsys, caplog):
    files = make_run_files(tmp_path)
    git_repo(tmp_path, branch="feature")
    first = record(files, tmp_path)
    assert first["model_version"] == "1"

    # a later verdict on the same file (only a threshold changed, and it now fails) adds to version 1
    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 500.0}}}}))
    set_gate(files, passed=False, failed=("fps",))
    second = record(files, tmp_path)
    assert second["model_version"] == "1" and second["run_id"] != first["run_id"]
    (version,) = client.search_model_versions("name = 'edgeproof-detector'")
    assert version.tags["runs"] == f"{first['run_id']},{second['run_id']}"
    assert version.tags["gate.build"] == "passed" and version.tags["promotion.run_id"] == first["run_id"]
    assert [e["verdicts"] for e in history(version.tags)] == [
        {"build": "passed"},
        {"build": "failed: fps"},
    ]
    assert "failed: fps" in version.description and second["run_id"][:8] in version.description
    assert str(client.get_model_version_by_alias("edgeproof-detector", "candidate").version) == "1"

    # a new model file that passes is version 2 and takes the alias; rollback moves it back
    make_fixed_detector(files.model, np.ones((7, 4), np.float32), 32, {0: "circle"})
    new_sha = sha256_file(files.model)
    for name in ("eval", "bench"):
        files.metrics[name].write_text(
            json.dumps({**json.loads(files.metrics[name].read_text()), "model_sha256": new_sha})
        )
    files.metrics["gate"].write_text(json.dumps({"passed": True, "model_sha256": new_sha, "failed": []}))
    commit_all(tmp_path)  # only a run whose inputs are committed registers its file
    assert record(files, tmp_path)["model_version"] == "2"
    assert str(client.get_model_version_by_alias("edgeproof-detector", "candidate").version) == "2"

    params = tmp_path / "params.yaml"
    assert cli(["--params", str(params), "model", "show", "--alias", "candidate"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["model_sha256"], shown["promotion"]["gate"]["passed"]) == ("2", new_sha, True)
    assert shown["alias_history"] == ["1"]
    assert cli(["--params", str(params), "model", "rollback", "--alias", "candidate"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved == {"name": "edgeproof-detector", "alias": "candidate", "from": "2", "to": "1", "skipped_deleted": [],
                     "skipped_held_back": {}}  # fmt: skip
    assert str(client.get_model_version_by_alias("edgeproof-detector", "candidate").version) == "1"
    with caplog.at_level(logging.ERROR):
        assert cli(["--params", str(params), "model", "rollback", "--alias", "candidate"]) == 2
        assert cli(["--params", str(params), "model", "rollback", "--alias", "candidate", "--to", "9"]) == 2
    assert "alias history is empty" in caplog.text and "edgeproof-detector@candidate" in caplog.text
    assert cli(["--params", str(params), "model", "rollback", "--alias", "candidate", "--to", "2"]) == 0
    assert str(client.get_model_version_by_alias("edgeproof-detector", "candidate").version) == "2"


def test_champion_only_from_a_clean_release_branch_run(tmp_path, client, monkeypatch):
    files = make_run_files(tmp_path)
    git_repo(tmp_path)  # main
    monkeypatch.setenv("DVC_EXP_NAME", "lucid-yawl")  # a `dvc exp run` on main is an experiment
    sent = record(files, tmp_path)
    run = client.get_run(sent["run_id"])
    assert run.info.run_name.startswith("lucid-yawl@") and run.data.tags["dvc_experiment"] == "lucid-yawl"
    assert str(client.get_model_version_by_alias("edgeproof-detector", "candidate").version) == "1"
    assert not client.get_registered_model("edgeproof-detector").aliases.get("champion")
    monkeypatch.delenv("DVC_EXP_NAME")  # the same file from a clean main run: released, under the configured name
    assert record(files, tmp_path, champion_alias="prod")["model_version"] == "1"
    assert str(client.get_model_version_by_alias("edgeproof-detector", "prod").version) == "1"


def test_device_verdicts_and_headline_metrics(tmp_path, client):
    files = make_run_files(tmp_path)
    device = tmp_path / "reports" / "device"
    for profile, passed, sha in (("jetson-nano", False, SHA), ("jetson-orin-nano", True, "f" * 64)):
        (device / profile).mkdir(parents=True)
        report = {"passed": passed, "model_sha256": sha, "failed": [] if passed else ["fps"]}
        (device / profile / "gate.json").write_text(json.dumps(report))
    files.device_reports = device
    headline = {"map50_95": 0.7912345678901234, "fps_e2e": 113.515, "latency_ms_p95": 9.2707}
    files.metrics["headline"] = tmp_path / "headline.json"
    files.metrics["headline"].write_text(json.dumps(headline))
    git_repo(tmp_path)
    sent = record(files, tmp_path)
    run = client.get_run(sent["run_id"])
    assert {k: run.data.metrics[k] for k in headline} == headline  # the very numbers dvc metrics diff shows
    version = client.get_model_version("edgeproof-detector", sent["model_version"])
    assert version.tags["gate.jetson-nano"] == "failed: fps" and version.tags["gate.build"] == "passed"
    assert "gate.jetson-orin-nano" not in version.tags  # that verdict is about another file
    assert version.tags["metric.map50_95"] == "0.7912345678901234" and version.tags["metric.fps_e2e"] == "113.515"


def test_input_example_of_a_model_with_dynamic_height_and_width(tmp_path):
    import onnx

    from edgeproof.tracking.mlflow_model import signature_and_example

    model = onnx.load(make_fixed_detector(tmp_path / "m.onnx", np.zeros((7, 4), np.float32), 96, {0: "a"}))
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("h", "w"), strict=True):
        dim.dim_param = name  # as an export with dynamic=True writes it
    signature, example = signature_and_example(model)
    assert signature.inputs.inputs[0].shape == (-1, 3, -1, -1)
    assert example["images"].shape == (1, 3, 96, 96)  # the size it was exported at (metadata imgsz)


@pytest.mark.parametrize(
    ("origin", "alias"),
    [
        ({"branch": "main", "git_dirty": "false", "dvc_experiment": "", "pull_request": "false"}, "champion"),
        ({"branch": "main", "git_dirty": "true", "dvc_experiment": "", "pull_request": "false"}, ""),  # uncommitted
        (
            {"branch": "main", "git_dirty": "false", "dvc_experiment": "lucid-yawl", "pull_request": "false"},
            "candidate",
        ),
        ({"branch": "main", "git_dirty": "false", "dvc_experiment": "", "pull_request": "true"}, "candidate"),
        ({"branch": "feature", "git_dirty": "false", "dvc_experiment": "", "pull_request": "false"}, "candidate"),
        ({"branch": "", "git_dirty": "unknown", "dvc_experiment": "", "pull_request": "false"}, ""),
    ],
)
def test_which_alias_a_passing_run_earns(origin, alias):
    from edgeproof.tracking.context import alias_for

    assert alias_for({**origin, "provenance": "clean"}, True, "candidate", "champion", ["main"]) == alias
    assert alias_for(origin, False, "candidate", "champion", ["main"]) == ""


def test_a_pull_request_is_recognised_from_the_ci_environment(tmp_path, monkeypatch):
    from edgeproof.tracking.context import run_name, run_origin

    monkeypatch.setenv("GITHUB_HEAD_REF", "fix-nms")
    monkeypatch.setenv("GITHUB_REF_NAME", "42/merge")
    origin = run_origin(tmp_path)
    assert origin == {"branch": "fix-nms", "pull_request": "true", "dvc_experiment": ""}
    tags = {**origin, "git_commit": "0123456789abcdef", "git_dirty": "false"}
    assert run_name(tags, "int8", "f" * 32) == "fix-nms@0123456-int8"
    assert run_name({**tags, "git_dirty": "true"}, "int8", "abcdef" + "0" * 26) == "fix-nms@0123456+dirty-int8-abcdef"


def test_mlflow_has_every_number_of_the_headline_as_dvc_metrics_diff_shows_it(tmp_path, client):
    """``metrics/headline.json`` as the gate stage writes it (with a device profile): each number, and
    the verdict as 1/0, is an MLflow metric of exactly that name and value; the runs view's columns are
    headline keys."""
    assert set(KEY_METRICS) <= set(HEADLINE_KEYS)
    files = make_run_files(tmp_path)
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"epochs": 3}))
    device, _missing = bench_figures({"fps_e2e": 12.345, "latency_ms": {"p95": 81.234}})  # as device_benches
    headline = headline_metrics(*(json.loads(files.metrics[n].read_text()) for n in ("eval", "bench", "gate")),
                                {"epochs": 3}, files.model, None, {"jetson-nano": device})  # fmt: skip
    files.metrics["headline"] = tmp_path / "headline.json"
    write_headline(files.metrics["headline"], headline)
    git_repo(tmp_path)
    run = client.get_run(record(files, tmp_path)["run_id"])
    numbers = {k: v for k, v in flatten(json.loads(files.metrics["headline"].read_text())).items()
               if isinstance(v, (bool, int, float))}  # fmt: skip
    assert {"mAP50-95", "fps", "gate_passed", "devices.jetson-nano.latency_p95_ms"} <= set(numbers)
    assert {k: run.data.metrics.get(k) for k in numbers} == {k: float(v) for k, v in numbers.items()}
    assert not any(k.startswith("headline.") for k in run.data.metrics)


def gate_report(passed: bool, min_fps: float, sha: str = SHA) -> dict:
    """A gate report as the gate stage writes it: the thresholds are in its rules."""
    rules = [
        {"name": "fps", "metric": "fps_e2e", "op": ">=", "threshold": min_fps, "measured": 50.0, "passed": passed},
        {"name": "same_model_evaluated", "op": "==", "threshold": sha, "measured": sha, "passed": True},
    ]
    return {"passed": passed, "model_sha256": sha, "failed": [] if passed else ["fps"], "rules": rules}


def test_a_what_if_experiment_never_rewrites_the_champion_s_promotion_record(tmp_path, client, capsys, monkeypatch):
    """Issue 18: `dvc exp run -S gate.min_fps=200` after a release turned version 1's tags into
    `failed: fps` and `model show --alias champion` into `"passed": false`."""
    files = make_run_files(tmp_path)
    files.metrics["gate"].write_text(json.dumps(gate_report(True, 10.0)))
    commit = git_repo(tmp_path)
    released = record(files, tmp_path)
    assert str(client.get_model_version_by_alias("edgeproof-detector", "champion").version) == "1"

    monkeypatch.setenv("DVC_EXP_NAME", "what-if")
    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 200.0}}}}))
    files.metrics["gate"].write_text(json.dumps(gate_report(False, 200.0)))
    files.metrics["headline"] = tmp_path / "headline.json"
    files.metrics["headline"].write_text(json.dumps({"fps": 50.0, "gate_passed": False}))
    what_if = record(files, tmp_path)
    assert what_if["model_version"] == "1"

    version = client.get_model_version("edgeproof-detector", "1")
    assert version.tags["gate.build"] == "passed" and "metric.gate_passed" not in version.tags
    assert str(client.get_model_version_by_alias("edgeproof-detector", "champion").version) == "1"
    assert cli(["--params", str(files.params), "model", "show", "--alias", "champion"]) == 0
    shown = json.loads(capsys.readouterr().out)
    promotion = shown["promotion"]
    assert promotion["passed"] is True and promotion["gate"]["passed"] is True
    assert promotion["run_id"] == released["run_id"] and promotion["origin"] == f"branch main@{commit[:7]}"
    assert promotion["thresholds"] == {"fps": ">= 10.0"} and promotion["aliases"] == {"champion": released["run_id"]}
    first, later = shown["history"]
    assert first["run_id"] == released["run_id"] and first["verdicts"] == {"build": "passed"}
    assert later["run_id"] == what_if["run_id"] and later["verdicts"] == {"build": "failed: fps"}
    assert later["origin"] == f"experiment what-if on main@{commit[:7]}+dirty"  # -S changed params.yaml
    assert later["thresholds"] == {"fps": ">= 200.0"}
    assert "Promotion record" in version.description and "experiment what-if" in version.description


def _new_model_file(files, value: float) -> str:
    """Replace the gated model by another file (another version when it passes); return its sha256."""
    make_fixed_detector(files.model, np.full((7, 4), value, np.float32), 32, {0: "circle"})
    sha = sha256_file(files.model)
    for name in ("eval", "bench"):
        files.metrics[name].write_text(json.dumps({**json.loads(files.metrics[name].read_text()), "model_sha256": sha}))
    files.metrics["gate"].write_text(json.dumps(gate_report(True, 10.0, sha)))
    return sha


def test_rollback_skips_versions_deleted_since_and_names_the_choices(tmp_path, client, capsys, caplog):
    """Issue 18: alias history [1, 2], version 2 deleted: rollback failed every time with "version=2 not found"."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path, branch="feature")
    for value in (0.0, 1.0, 2.0):  # versions 1, 2, 3 in turn hold candidate (committed runs on a feature branch)
        _new_model_file(files, value)
        commit_all(tmp_path)
        record(files, tmp_path)
    params, alias = str(files.params), ["--alias", "candidate"]
    client.delete_model_version("edgeproof-detector", "2")
    with caplog.at_level(logging.WARNING):
        assert cli(["--params", params, "model", "rollback", *alias]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert (moved["from"], moved["to"], moved["skipped_deleted"]) == ("3", "1", ["2"])
    assert "skipped version(s) 2" in caplog.text
    assert str(client.get_model_version_by_alias("edgeproof-detector", "candidate").version) == "1"
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert cli(["--params", params, "model", "rollback", *alias]) == 2  # nothing earlier: the choices are named
        assert "versions: 1, 3; use --to" in caplog.text
        assert cli(["--params", params, "model", "rollback", *alias, "--to", "2"]) == 2
        assert "version 2 does not exist (any more); choose one with --to: 1, 3" in caplog.text
    assert cli(["--params", params, "model", "rollback", *alias, "--to", "3"]) == 0


def test_a_run_whose_inputs_are_not_committed_is_logged_but_registers_and_promotes_nothing(tmp_path, client):
    """Issue 18: with an untracked dataset under data/sources a clean-looking main run became champion; it
    then became candidate, registering the file with its figures as the version's fixed promotion record,
    which a clean run making the version champion later could not replace (review records 4)."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    (tmp_path / "data" / "sources" / "new").mkdir(parents=True)
    (tmp_path / "data" / "sources" / "new" / "img.png").write_bytes(b"not committed")
    sent = record(files, tmp_path)
    assert sent["model_version"] is None
    assert client.search_model_versions("name = 'edgeproof-detector'") == []  # nothing registered, no alias
    tags = client.get_run(sent["run_id"]).data.tags  # the run is logged, and says why it is not released
    assert tags["provenance"] == "not clean: untracked: data/sources/new/img.png"
    assert tags["not_registered_because"] == f"inputs not committed: provenance {tags['provenance']}"
    assert "registered_model_version" not in tags and "not_champion_because" not in tags

    commit_all(tmp_path)  # the same file from the committed inputs: registered by that run, and released
    released = record(files, tmp_path)
    version = client.get_model_version_by_alias("edgeproof-detector", "champion")
    assert (released["model_version"], str(version.version)) == ("1", "1")
    assert version.tags["promotion.run_id"] == released["run_id"] and version.tags["promotion.provenance"] == "clean"

    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 20.0}}}}))
    dirty = record(files, tmp_path)  # a dirty workspace judging the released file: its verdict is history
    assert dirty["model_version"] == "1"
    version = client.get_model_version("edgeproof-detector", "1")
    assert [e["run_id"] for e in history(version.tags)] == [released["run_id"], dirty["run_id"]]
    assert history(version.tags)[-1]["provenance"] == "not clean: modified: params.yaml"
    assert version.tags["promotion.run_id"] == version.tags["alias.champion.run_id"] == released["run_id"]
    assert "git workspace dirty: true" in client.get_run(dirty["run_id"]).data.tags["not_registered_because"]


def test_a_run_whose_inputs_are_not_committed_writes_no_promotion_record():
    """A version with no promotion record yet (registered before records existed) gets none from such a run."""
    from edgeproof.tracking.history import new_tags
    from edgeproof.tracking.promotion import PROMOTION_TAG

    tags = {"model_sha256": SHA, "branch": "main", "git_commit": "0" * 40, "git_dirty": "false"}
    passed = {"passed": True, "verdicts": {"build": {"passed": True}}, "metrics": {"fps": 50.0}}
    assert PROMOTION_TAG in new_tags({}, {**passed, "tags": {**tags, "provenance": "clean"}}, "run-0", "")
    for dirty in ({"provenance": "not clean: untracked: data/x.png"}, {"git_dirty": "true", "provenance": "clean"}):
        written = new_tags({}, {**passed, "tags": {**tags, **dirty}}, "run-1", "")
        assert PROMOTION_TAG not in written and any(k.startswith("history.") for k in written)


def test_the_history_is_capped_but_the_promotion_record_stays():
    from edgeproof.tracking.history import MAX_HISTORY, dropped_history, new_tags
    from edgeproof.tracking.promotion import promotion

    committed = {"git_dirty": "false", "provenance": "clean"}
    tags = {"model_sha256": SHA, "branch": "main", "git_commit": "0" * 40, **committed}
    base = {"tags": tags, "metrics": {"fps": 50.0}}
    passed = {**base, "passed": True, "verdicts": {"build": {"passed": True}}, "times": {"end_ms": 1000}}
    tags = new_tags({}, passed, "run-0", "champion")
    for i in range(1, MAX_HISTORY + 5):  # later runs: the history is ordered by when each was judged
        failed = {**base, "passed": False, "verdicts": {"build": {"passed": False, "failed": ["fps"]}}}
        failed["times"] = {"end_ms": 1000 + i}
        tags.update(new_tags(tags, failed, f"run-{i}", ""))
        for key in dropped_history(tags):
            tags.pop(key)
    entries = history(tags)
    assert len(entries) == MAX_HISTORY and entries[-1]["run_id"] == f"run-{MAX_HISTORY + 4}"
    assert promotion(tags)["run_id"] == "run-0" and promotion(tags)["passed"] is True
