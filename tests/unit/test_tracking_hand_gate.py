"""A gate run by hand (``--model/--eval/--bench``) registers only the pipeline's own files, under the profile
whose thresholds judged them (review records11 #1)."""

from __future__ import annotations

import json

import yaml

from tests.unit.test_tracking import make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)

MODEL = "edgeproof-detector"


def test_figures_from_a_file_outside_the_repository_are_logged_but_never_released(tmp_path, tmp_path_factory, client):  # noqa: F811
    """An edited copy of eval.json in /tmp (mAP50-95 +0.15) was recorded `provenance: clean` on main, registered
    and made champion, with git and `dvc status` clean throughout."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    copy = tmp_path_factory.mktemp("elsewhere") / "eval.json"
    forged = json.loads(files.metrics["eval"].read_text())
    copy.write_text(json.dumps({**forged, "map50_95": forged["map50_95"] + 0.15}))
    files.metrics["eval"] = copy
    sent = record(files, tmp_path)
    assert sent["model_version"] is None and client.search_model_versions(f"name = '{MODEL}'") == []
    tags = client.get_run(sent["run_id"]).data.tags  # logged, and saying why it is not released
    assert tags["provenance"] == f"not clean: judged file outside the repository: {copy}"
    assert tags["not_registered_because"] == f"inputs not committed: provenance {tags['provenance']}"
    assert client.get_run(sent["run_id"]).data.metrics["eval.map50_95"] == forged["map50_95"] + 0.15


def test_the_verdict_is_named_after_the_profile_whose_thresholds_judged_it(tmp_path, client):  # noqa: F811
    """Without release.json (a hand run) the version's tag was `gate.build`, though cpu-ci's thresholds applied."""
    files = make_run_files(tmp_path)
    params = yaml.safe_load(files.params.read_text())
    files.params.write_text(yaml.safe_dump({**params, "release": {"build_profile": "cpu-ci"}}))
    git_repo(tmp_path)
    assert record(files, tmp_path)["model_version"] == "1"  # the committed files of the repo: released
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["gate.cpu-ci"] == "passed" and "gate.build" not in tags


def test_a_hand_gated_pipeline_output_the_release_did_not_choose_is_logged_but_never_released(tmp_path, client):  # noqa: F811
    """The pipeline's own, unedited files of a variant the release stage turned down (``--model
    models/optimized/fp32.onnx`` with ``metrics/variants/fp32/``) were a clean record and moved champion."""
    from edgeproof.release.gating import GateRun, _record

    hand = GateRun(
        params=tmp_path / "params.yaml", report_json=tmp_path / "gate.json", report_md=tmp_path / "gate.md",
        headline=tmp_path / "headline.json", train_metrics=tmp_path / "train.json",
        model=tmp_path / "fp32.onnx", eval=tmp_path / "eval.json", bench=tmp_path / "bench.json",
    )  # fmt: skip
    assert _record(hand, hand.params).not_chosen  # a hand run's file is no release choice
    assert _record(GateRun(**{**vars(hand), "release": tmp_path / "release.json"}), hand.params).not_chosen is None
    files = make_run_files(tmp_path)
    files.not_chosen = _record(hand, hand.params).not_chosen
    git_repo(tmp_path)  # every file committed: only the hand run keeps it from release
    sent = record(files, tmp_path)
    assert sent["model_version"] is None and client.search_model_versions(f"name = '{MODEL}'") == []
    tags = client.get_run(sent["run_id"]).data.tags
    assert tags["provenance"] == f"not clean: {files.not_chosen}"
    assert tags["not_registered_because"] == f"a hand-gated run: provenance {tags['provenance']}"  # not "commit"
