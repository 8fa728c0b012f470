"""Faults injected into a running stage: killed while writing ``data/prepared``, the data stage leaves the
previous dataset whole, and the rerun gives exactly what an uninterrupted run gives."""

from __future__ import annotations

import signal

from edgeproof.reliability.faults import _finish, data_stage_interrupted


def test_sigkill_while_writing_the_dataset(tmp_path):
    reference_repo = tmp_path / "reference"
    reference_repo.mkdir()
    code, reference = _finish(reference_repo, seed=1)
    assert code == 0
    result = data_stage_interrupted(tmp_path, signal.SIGKILL, reference)
    assert result["outcome"] == "survived", result["detail"]
