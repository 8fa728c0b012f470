"""Issue 12 faults: SIGTERM and SIGKILL during ``train`` (mid-epoch), ``export`` and ``optimize`` (once they
began writing). Right after the kill no declared output is partial; the rerun gives what an uninterrupted
run gives: byte for byte, or for a resumed training within the stated tolerance."""

from __future__ import annotations

import signal

import pytest

from reliability.faults_stages import (
    comparable_content,
    curve_problems,
    declared_outputs,
    reference_repo,
    stage_interrupted,
)


def test_outputs_are_what_dvc_yaml_declares():
    assert declared_outputs("train") == ["models/best.pt", "metrics/train.json", "plots/train/curve.csv"]
    assert "models/model.onnx" in declared_outputs("export")


def test_only_wall_clock_time_and_the_resumed_flag_are_ignored(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"epochs": 4, "resumed": false, "train_seconds": 1.5}')
    b.write_text('{"epochs": 4, "resumed": true, "train_seconds": 9.0}')
    assert comparable_content(a) == comparable_content(b)
    b.write_text('{"epochs": 3, "resumed": true, "train_seconds": 9.0}')
    assert comparable_content(a) != comparable_content(b)
    b.write_text('{"epochs": 4, "resumed": tr')  # torn
    assert comparable_content(b).startswith("torn:")
    c, d = tmp_path / "c.csv", tmp_path / "d.csv"
    c.write_text("epoch,map50,time\n1,0.5,1.0\n")
    d.write_text("epoch,map50,time\n1,0.5,7.0\n")
    assert comparable_content(c) == comparable_content(d)
    d.write_text("epoch,map50,time\n1,0.6,1.0\n")
    assert comparable_content(c) != comparable_content(d)


def test_a_resumed_curve_must_have_every_epoch_once_and_stay_within_tolerance():
    want = [{"epoch": e, "map50": 0.5, "train_box_loss": 1.0, "time": e} for e in (1, 2, 3)]
    close = [{**r, "map50": 0.52, "train_box_loss": 1.05, "time": 99} for r in want]
    assert curve_problems(want, close) == []
    assert curve_problems(want, [*close[:1], *close]) != []  # epoch 1 twice
    far = [*close[:2], {**close[2], "train_box_loss": 1.5}]
    assert curve_problems(want, far) == ["epoch 3 train_box_loss 1.5 vs 1.0"]
    assert curve_problems(want, [*close[:2], {**close[2], "map50": 0.4}]) == ["epoch 3 map50 0.4 vs 0.5"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """data -> train -> export -> optimize, uninterrupted, tiny params (~25 s)."""
    return reference_repo(tmp_path_factory.mktemp("stage-faults") / "reference")


@pytest.mark.pipeline
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("stage", ["train", "export", "optimize"])
def test_interrupted_stage_leaves_no_partial_output_and_the_rerun_matches(reference, tmp_path, stage, sig):
    result = stage_interrupted(tmp_path, reference, stage, sig)
    assert result["outcome"] == "survived", result["detail"]
