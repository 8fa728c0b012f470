"""Disk full in the data stage: one line naming the folder, exit code 2, the previous output kept."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.data.builders import clean_coco, tree_state
from tests.data.test_params_and_stage import SRC, _run_stage, _write_params

COCO = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}


def _stage_in(repo: Path, out: str) -> int:
    import os

    from stages.data import main as data_main

    cwd = Path.cwd()
    os.chdir(repo)
    try:
        return data_main(["--out", out, "--metrics", "metrics/data.json"])
    finally:
        os.chdir(cwd)


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _fill(folder: Path) -> None:
    """Fill the filesystem of ``folder`` to the last byte."""
    with (folder / "filler").open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if " data ERROR " in line]


def test_disk_full_on_a_real_small_filesystem(tmp_path, small_tmpfs, capsys):
    repo = tmp_path / "repo"
    clean_coco(repo / SRC)
    _write_params(repo, {"source": "coco", "link": "copy", "coco": COCO})
    (repo / "full").symlink_to(small_tmpfs, target_is_directory=True)
    assert _stage_in(repo, "full/prepared") == 0
    before = tree_state(small_tmpfs / "prepared")
    _fill(small_tmpfs)
    capsys.readouterr()
    assert _stage_in(repo, "full/prepared") == 2
    [message] = _error_lines(capsys)
    assert "data stage failed: full/prepared: cannot write the prepared dataset" in message and "[ENOSPC]" in message
    assert tree_state(small_tmpfs / "prepared") == before
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler", "prepared"]  # no temp tree left


def test_disk_full_injected(tmp_path, monkeypatch, capsys):
    repo = tmp_path
    clean_coco(repo / SRC)
    _write_params(repo, {"source": "coco", "link": "copy", "coco": COCO})
    assert _run_stage(repo) == 0
    before = tree_state(repo / "data/prepared")
    report_before = (repo / "metrics/data.json").read_text()

    def no_space(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", no_space)
    capsys.readouterr()
    assert _run_stage(repo) == 2
    [message] = _error_lines(capsys)
    assert "data stage failed: data/prepared: cannot write the prepared dataset" in message
    assert "No space left on device [ENOSPC]" in message
    assert tree_state(repo / "data/prepared") == before
    assert json.loads((repo / "metrics/data.json").read_text()) == json.loads(report_before)
