"""Faults injected into a running stage: killed while writing ``data/prepared``, the data stage leaves the
previous dataset whole; killed while writing its outputs, evaluate leaves no torn file. Each rerun gives
what an uninterrupted run gives."""

from __future__ import annotations

import signal

import pytest

from reliability.faults import data_stage_interrupted, run_data_stage, second_repro_refused
from reliability.faults_eval import evaluate_interrupted

pytestmark = pytest.mark.pipeline  # child processes and real stage runs: ~30 s


def test_sigkill_while_writing_the_dataset(tmp_path):
    reference_repo = tmp_path / "reference"
    reference_repo.mkdir()
    code, reference = run_data_stage(reference_repo, seed=1)
    assert code == 0
    result = data_stage_interrupted(tmp_path, signal.SIGKILL, reference)
    assert result["outcome"] == "survived", result["detail"]


def test_sigkill_while_evaluate_writes_its_outputs(tmp_path):
    result = evaluate_interrupted(tmp_path)
    assert result["outcome"] == "survived", result["detail"]


def test_a_second_dvc_repro_in_the_same_workspace_is_refused(tmp_path):
    result = second_repro_refused(tmp_path)
    assert result["outcome"] == "survived", result["detail"]
