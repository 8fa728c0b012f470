"""A tracking failure never changes a verdict (issue 18: a full disk failed a passing gate). One that loses the
run's record for good (it can be neither sent nor kept in the outbox) fails the stage with exit 2, the code of an
environment error, never 1 (a failed rule), so that DVC does not mark the stage done (interrupt12 finding 2)."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from stages import gate as gate_stage

from edgeproof.config import TrackParams
from edgeproof.tracking.pipeline import RecordNotKept, outbox_dir, record_pipeline_run
from tests.unit.test_tracking import make_run_files

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def full_disk(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``path`` on a 20 MB tmpfs filled to the last byte (as root), else ENOSPC injected into file copies."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", str(args[-1]))

        monkeypatch.setattr(shutil, "copy2", no_space)
        yield "injected"
        return
    try:
        with (path / "filler").open("wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        yield "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_fails_the_stage_and_keeps_the_passing_verdict(tmp_path, monkeypatch, capsys):
    files = make_run_files(tmp_path)
    evaluation = json.loads(files.metrics["eval"].read_text())
    skipped = {"ultralytics": "-"}  # one second scorer ran: none at all is inconclusive, not a pass
    evaluation["cross_check"] = {"passed": True, "pycocotools": 0.7, "independent": 0.7, "skipped": skipped}
    evaluation["per_class"][0].update(ap=0.7, ap50=0.91, ap75=0.75, n_gt=40)  # the rows each mAP is the mean of
    evaluation.update(map75=0.75, n_images=50, n_gt=40)  # what it is over: under gate.min_val_* is inconclusive
    files.metrics["eval"].write_text(json.dumps(evaluation))
    bench = json.loads(files.metrics["bench"].read_text())
    bench["e2e"] = {"fps": bench["fps_e2e"], "mean": 1000.0 / bench["fps_e2e"], "p95": bench["latency_ms"]["p95"]}
    bench["e2e"]["samples"] = 100  # the frames it is over: under gate.min_timed_frames is inconclusive
    files.metrics["bench"].write_text(json.dumps(bench))  # the run fps_e2e and latency_ms are copied from
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["track"] |= {"enabled": True, "experiment": "unit"}
    params["profiles"]["cpu-ci"]["gate"] |= {"min_fps": 1.0, "min_map50": 0.1, "max_latency_p95_ms": 1000.0}
    params["profiles"]["cpu-ci"]["gate"].pop("min_map50_95", None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "train.json").write_text(json.dumps({"epochs": 3}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("EDGEPROOF_STATE_DIR", str(tmp_path / "state"))
    t = tmp_path
    argv = ["--params", str(t / "params.yaml"), "--model", str(files.model), "--eval", str(files.metrics["eval"])]
    argv += ["--bench", str(files.metrics["bench"]), "--report-json", str(t / "out" / "gate.json")]
    argv += ["--report-md", str(t / "out" / "gate.md"), "--headline", str(t / "out" / "headline.json")]
    argv += ["--train-metrics", str(t / "train.json"), "--device-reports", str(t / "none")]
    with full_disk(tmp_path / "state", monkeypatch):
        # 2, not 0: the record, lost for good, left one warning and DVC took the stage for done; 1 (a traceback)
        # before issue 18
        assert gate_stage.main(argv) == 2
    assert json.loads((t / "out" / "gate.json").read_text())["passed"] is True  # the verdict files stay: right
    err = capsys.readouterr().err
    assert " INFO release gate PASSED" in err
    (error,) = [line for line in err.splitlines() if " ERROR " in line]
    assert str(outbox_dir(tmp_path / "state")) in error and "No space left on device" in error
    assert "dvc repro -f -s gate" in error
    assert "Traceback" not in err


def test_a_record_that_could_not_be_snapshot_raises_and_the_waiting_ones_go_next_time(tmp_path, monkeypatch):
    files, state = make_run_files(tmp_path), tmp_path / "state"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # down: the first record waits
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert record_pipeline_run(files, tmp_path, state, TrackParams(experiment="unit"))["pending"] is True
    waiting = {p.name for p in outbox_dir(state).iterdir() if not p.name.startswith(".")}
    with monkeypatch.context() as m:
        m.setattr(shutil, "copy2", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
        files.params.write_text(
            yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 2.0}}}})
        )  # another run: another record
        with pytest.raises(RecordNotKept, match="No space left"):
            record_pipeline_run(files, tmp_path, state, TrackParams(experiment="unit"))
    assert {p.name for p in outbox_dir(state).iterdir()} >= waiting  # nothing waiting was lost
    assert not [p for p in outbox_dir(state).iterdir() if p.name.startswith(".")]  # no half-written folder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = record_pipeline_run(files, tmp_path, state, TrackParams(experiment="unit"))
    assert {s["record_id"] for s in result["sent"]} >= waiting  # retried at the next record
