"""Defect 11: replacing a folder leaves no moment without either version, and outputs are fsynced.

A power cut cannot be injected in a test; what can be checked is the order of the filesystem
operations that makes a power cut harmless: the bytes are flushed before the rename that publishes
them, the folder entry after it, and a folder swap is one step.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

import edgeproof.folders as folders
from edgeproof.folders import atomic_dir, recover_dir
from edgeproof.io import copy_file, write_json


@pytest.fixture
def events(monkeypatch):
    """Every fsync (by path) and every rename, in order."""
    log: list[tuple[str, str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", str(Path(f"/proc/self/fd/{fd}").readlink()), ""))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        log.append(("replace", str(src), str(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name file descriptors")
@pytest.mark.parametrize("writer", ["json", "copy"])
def test_file_is_flushed_before_and_its_folder_after_the_rename(tmp_path, events, writer):
    target = tmp_path / "out" / "m.json"
    if writer == "json":
        write_json(target, {"a": 1})
    else:
        (tmp_path / "src.bin").write_bytes(b"x" * 1000)
        copy_file(tmp_path / "src.bin", target)
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(target)]
    assert len(renames) == 1
    tmp = events[renames[0]][1]
    flushed_file = [i for i, e in enumerate(events) if e == ("fsync", tmp, "")]
    flushed_dir = [i for i, e in enumerate(events) if e == ("fsync", str(target.parent), "")]
    assert flushed_file and flushed_file[-1] < renames[0]
    assert flushed_dir and flushed_dir[-1] > renames[0]


def _make(target: Path, marker: str) -> None:
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text(marker)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text(marker)


def test_folder_swap_never_leaves_the_target_missing(tmp_path, monkeypatch):
    target = tmp_path / "prepared"
    _make(target, "old")
    gaps = []
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):  # look at the world after every rename step
        real_replace(src, dst, *args, **kwargs)
        if not (target / "a.txt").is_file():
            gaps.append((str(src), str(dst)))

    monkeypatch.setattr(os, "replace", replace)
    _make(target, "new")
    assert gaps == []
    assert (target / "a.txt").read_text() == "new" and (target / "sub" / "b.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_a_reader_always_finds_a_complete_version(tmp_path):
    target = tmp_path / "prepared"
    _make(target, "v0")
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                a = (target / "a.txt").read_text()
                b = (target / "sub" / "b.txt").read_text()
                seen.append("ok" if a.startswith("v") and b.startswith("v") else "torn")
            except FileNotFoundError:
                seen.append("missing")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 60):
            _make(target, f"v{i}")
    finally:
        stop.set()
        thread.join()
    assert seen and set(seen) == {"ok"}, {s: seen.count(s) for s in set(seen)}


def test_the_new_tree_is_flushed_before_the_swap(tmp_path, monkeypatch):
    order = []
    real_tree, real_exchange = folders.fsync_tree, folders._exchange
    monkeypatch.setattr(folders, "fsync_tree", lambda root: (order.append("flush"), real_tree(root))[1])
    monkeypatch.setattr(folders, "_exchange", lambda a, b: (order.append("swap"), real_exchange(a, b))[1])
    target = tmp_path / "prepared"
    _make(target, "old")
    _make(target, "new")
    assert order == ["flush", "flush", "swap"]


def test_without_exchange_an_interrupted_swap_is_undone(tmp_path, monkeypatch):
    """Where renameat2 is missing, two renames are used: a crash between them is repaired on the next call."""
    monkeypatch.setattr(folders, "_exchange", lambda a, b: False)
    target = tmp_path / "prepared"
    _make(target, "old")
    os.replace(target, tmp_path / ".prepared.old")  # killed right after the first rename
    recover_dir(target)
    assert (target / "a.txt").read_text() == "old"
    os.replace(target, tmp_path / ".prepared.old")
    with pytest.raises(RuntimeError), atomic_dir(target):  # the next run fails, yet the old version is back
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "old"
    _make(target, "new")
    assert (target / "a.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_a_failed_second_rename_puts_the_old_tree_back(tmp_path, monkeypatch):
    monkeypatch.setattr(folders, "_exchange", lambda a, b: False)
    target = tmp_path / "prepared"
    _make(target, "old")
    real_replace, calls = os.replace, []

    def replace(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        _make(target, "new")
    assert (target / "a.txt").read_text() == "old"


def test_trees_left_by_killed_writers_are_removed_but_live_ones_kept(tmp_path):
    target = tmp_path / "prepared"
    _make(target, "v0")
    dead = tmp_path / ".prepared.abc123.tmpdir"  # a writer was SIGKILLed: its lock died with it
    (dead / "images").mkdir(parents=True)
    (dead / "images" / "x.jpg").write_bytes(b"x" * 100)
    live = tmp_path / ".prepared.def456.tmpdir"
    live.mkdir()
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another writer, still running
    try:
        _make(target, "v1")
    finally:
        os.close(holder)
    assert not dead.exists() and live.exists()
    assert (target / "a.txt").read_text() == "v1"


def test_scratch_folders_of_killed_processes_go_live_ones_stay_and_ours_is_removed(tmp_path):
    from edgeproof.folders import scratch_dir

    target = tmp_path / "models" / "model.onnx"
    dead = tmp_path / "models" / ".model.onnx.abc123.tmpdir"  # an export was SIGKILLed mid-way
    dead.mkdir(parents=True)
    (dead / "model.pt").write_bytes(b"x" * 100)
    live = tmp_path / "models" / ".model.onnx.def456.tmpdir"
    live.mkdir()
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another export, still running
    try:
        with scratch_dir(target) as tmp:
            assert tmp.parent == target.parent and tmp.name.startswith(".model.onnx.")
            (tmp / "work").write_text("x")
            assert not dead.exists() and live.exists()
        assert not tmp.exists()
        with pytest.raises(RuntimeError), scratch_dir(target) as tmp:
            raise RuntimeError("export failed")
        assert not tmp.exists()
    finally:
        os.close(holder)
    assert sorted(p.name for p in target.parent.iterdir()) == [live.name]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name file descriptors")
def test_a_tracking_record_is_flushed_before_the_outbox_shows_it(tmp_path, events, monkeypatch):
    """Issue 12.4: the MLflow outbox record and its artifact copies reach the disk before the rename that
    makes the record visible (a power cut cannot leave a torn record the replay would send)."""
    from edgeproof.tracking.record import RECORD_FILE, snapshot
    from tests.unit.test_tracking import make_run_files

    real_tree = folders.fsync_tree

    def fsync_tree(root):  # what was in the tree when it was flushed
        events.extend(("flush", str(p), "") for p in Path(root).rglob("*") if p.is_file())
        return real_tree(root)

    monkeypatch.setattr(folders, "fsync_tree", fsync_tree)
    (tmp_path / "run").mkdir()
    folder = snapshot(make_run_files(tmp_path / "run"), tmp_path, tmp_path / "outbox", log_model=True)
    publish = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(folder)]
    assert len(publish) == 1, events
    tmp = Path(events[publish[0]][1])
    flushed = {e[1] for e in events[: publish[0]] if e[0] in ("flush", "fsync")}
    files = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
    assert Path(RECORD_FILE) in files and any(p.suffix == ".onnx" for p in files)
    assert {str(tmp / p) for p in files} <= flushed
    assert str(tmp_path / "outbox") in {e[1] for e in events[publish[0] :] if e[0] == "fsync"}
