"""Defect 4: parallel queue workers share ``<state>/train/``: one lock per run, nothing written through a
link, no live run pruned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import edgeproof.training.runs as runs_mod
import edgeproof.training.train as train_mod
from edgeproof.config import parse_params
from edgeproof.data.synthetic import generate
from edgeproof.io import LockBusy, exclusive_lock
from edgeproof.training.dataview import private_view
from edgeproof.training.runs import hold_run, lock_path, prune_other_runs, view_path

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600.0


@pytest.fixture
def prepared(tmp_path):
    out = tmp_path / "prepared"
    generate(parse_params({"data": {"synthetic": {"n_train": 3, "n_val": 2, "image_size": 64}}}).data.synthetic, 0, out)
    return out


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (old, old), follow_symlinks=False)


def test_view_never_writes_through_an_existing_hard_link(prepared, tmp_path, monkeypatch):
    """A concurrent worker filled the view with links to *its* files: ours must replace them, not write into them."""
    theirs = tmp_path / "their_image.jpg"
    theirs.write_bytes(b"somebody else's image")
    view = tmp_path / "view"
    real_link = os.link
    raced = []

    def racing_link(src, dst, *args, **kwargs):
        if not raced:  # the other worker recreates the view just after our rmtree
            raced.append(dst)
            for image in (prepared / "images" / "train").iterdir():
                (view / "images" / "train").mkdir(parents=True, exist_ok=True)
                real_link(theirs, view / "images" / "train" / image.name)
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", racing_link)
    private_view(prepared, view)
    assert raced and theirs.read_bytes() == b"somebody else's image"
    for image in (prepared / "images" / "train").iterdir():
        assert (view / "images" / "train" / image.name).read_bytes() == image.read_bytes()
    assert not [p for p in view.rglob(".*.tmp")]


def test_view_copies_do_not_write_through_either(prepared, tmp_path, monkeypatch):
    """Across filesystems (no links) the copy goes to a new file renamed over the old entry."""
    theirs = tmp_path / "their_label.txt"
    theirs.write_text("theirs\n")
    view = tmp_path / "view"
    real_rmtree, real_link = shutil.rmtree, os.link

    def rmtree_then_race(path, *args, **kwargs):  # the other worker links its label right after our rmtree
        real_rmtree(path, *args, **kwargs)
        for label in (prepared / "labels" / "train").iterdir():
            (view / "labels" / "train").mkdir(parents=True, exist_ok=True)
            real_link(theirs, view / "labels" / "train" / label.name)

    def no_links(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(shutil, "rmtree", rmtree_then_race)
    monkeypatch.setattr(os, "link", no_links)
    private_view(prepared, view)
    assert theirs.read_text() == "theirs\n"


def _fake_training(tmp_path, monkeypatch, prepared):
    """``train()`` with ultralytics replaced by a fake that records how many sessions overlap, and that
    keeps training until another worker is seen waiting for the run's lock (the race, for certain)."""
    active, seen = [0], {"max": 0, "sessions": 0}
    lock = threading.Lock()
    other_waits = threading.Event()
    real_lock = runs_mod.exclusive_lock

    def spying_lock(path, wait=True, on_wait=None):
        def waiting():
            other_waits.set()
            if on_wait is not None:
                on_wait()

        return real_lock(path, wait=wait, on_wait=waiting)

    def fake_run(yolo_cls, params, data_root, run_dir, fingerprint, weights=None):
        with lock:
            active[0] += 1
            seen["max"] = max(seen["max"], active[0])
            seen["sessions"] += 1
        private_view(data_root, view_path(run_dir))
        seen["other_waited"] = other_waits.wait(timeout=60)  # a second worker arrives mid-training
        (run_dir / "weights").mkdir(parents=True, exist_ok=True)
        (run_dir / "weights" / "best.pt").write_bytes(b"weights")
        (run_dir / "results.csv").write_text("epoch,metrics/mAP50(B)\n1,0.5\n")
        with lock:
            active[0] -= 1
        return {"fingerprint": fingerprint, "resumed": False}

    monkeypatch.setattr(train_mod, "configure", lambda state: object)
    monkeypatch.setattr(train_mod, "_run", fake_run)
    monkeypatch.setattr(runs_mod, "exclusive_lock", spying_lock)
    return seen


def test_workers_with_one_fingerprint_take_turns(tmp_path, monkeypatch, prepared):
    seen = _fake_training(tmp_path, monkeypatch, prepared)
    params = parse_params({}).train
    results, errors = [], []

    def worker():
        try:
            results.append(train_mod.train(params, prepared, tmp_path / "state"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # one trained while the other waited on the lock (exercised, not hoped for), then reused it
    assert seen == {"max": 1, "sessions": 1, "other_waited": True}
    assert [r.best_pt.read_bytes() for r in results] == [b"weights", b"weights"]


def test_prune_spares_live_runs_and_drops_dead_ones(tmp_path):
    train_dir = tmp_path / "train"
    for name in ("keep", "live", "dead", "fresh"):
        (train_dir / name / "weights").mkdir(parents=True)
        (train_dir / name / "weights" / "last.pt").write_bytes(b"x")
        (train_dir / f"{name}-data" / "images").mkdir(parents=True)
    for name in ("keep", "live", "dead"):
        _age(train_dir / name, 2 * HOUR)
        _age(train_dir / f"{name}-data", 2 * HOUR)
    holder = subprocess.Popen(  # another worker, in its own process, holds "live" (a long training)
        [
            sys.executable,
            "-c",
            "import sys,time; from edgeproof.io import exclusive_lock\n"
            "with exclusive_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(60)",
            str(lock_path(train_dir / "live")),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}"},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        pruned = prune_other_runs(train_dir / "keep", min_age_s=HOUR)
    finally:
        holder.kill()
        holder.wait()
    assert pruned == ["dead"]
    left = sorted(p.name for p in train_dir.iterdir())
    assert left == ["fresh", "fresh-data", "keep", "keep-data", "live", "live-data", "live.lock"]
    assert prune_other_runs(train_dir / "keep", min_age_s=HOUR) == ["live"]  # its holder is gone


def test_lock_survives_the_holder_deleting_it(tmp_path, monkeypatch):
    """A pruner deletes the lock file while holding it; a waiter on the old file must not get a second lock."""
    lock = tmp_path / "run.lock"
    order, waiter_opens = [], []
    blocked = threading.Event()
    real_open = os.open

    def counting_open(path, *args, **kwargs):
        if Path(path) == lock and threading.current_thread().name == "waiter":
            waiter_opens.append(path)
        return real_open(path, *args, **kwargs)

    def waiter():
        with exclusive_lock(lock, on_wait=blocked.set):  # set once it holds the old file, found locked
            order.append(f"waiter after {len(waiter_opens)} opens")
            with pytest.raises(LockBusy), exclusive_lock(lock, wait=False):  # nobody else can take it meanwhile
                pass

    monkeypatch.setattr(os, "open", counting_open)
    with exclusive_lock(lock):
        t = threading.Thread(target=waiter, name="waiter")
        t.start()
        assert blocked.wait(timeout=30), "the waiter never found the lock taken"
        lock.unlink()
        order.append("pruner")
    t.join(timeout=30)
    # the waiter got the deleted file's lock, saw the name no longer pointed at it, and locked anew
    assert order == ["pruner", "waiter after 2 opens"]


def test_hold_run_blocks_a_second_holder(tmp_path):
    run = tmp_path / "train" / "abc"
    with hold_run(run), pytest.raises(LockBusy), exclusive_lock(lock_path(run), wait=False):
        pass
    with exclusive_lock(lock_path(run), wait=False):
        pass


WORKER = """
import json, os, sys, time
from pathlib import Path
import edgeproof.training.runs as runs
import edgeproof.training.train as t
from edgeproof.config import parse_params
from edgeproof.training.dataview import private_view
from edgeproof.training.runs import view_path

prepared, state, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def note(kind):
    with log.open("a") as fh:
        fh.write(f"{kind} {os.getpid()}\\n")

real_lock = runs.exclusive_lock

def spying_lock(path, wait=True, on_wait=None):
    def waiting():
        note("wait")
        if on_wait is not None:
            on_wait()
    return real_lock(path, wait=wait, on_wait=waiting)

def fake_run(yolo_cls, params, data_root, run_dir, fingerprint, weights=None):
    note("start")
    private_view(data_root, view_path(run_dir))
    deadline = time.monotonic() + 60
    while "wait" not in log.read_text() and time.monotonic() < deadline:  # the other worker, mid-training
        time.sleep(0.05)
    (run_dir / "weights").mkdir(parents=True, exist_ok=True)
    (run_dir / "weights" / "best.pt").write_bytes(b"weights")
    (run_dir / "results.csv").write_text("epoch,metrics/mAP50(B)\\n1,0.5\\n")
    note("end")
    return {"fingerprint": fingerprint, "resumed": False}

t.configure = lambda state: object
t._run = fake_run
runs.exclusive_lock = spying_lock
result = t.train(parse_params({}).train, prepared, state)
print(json.dumps({"best": result.best_pt.read_text(), "fingerprint": result.summary["fingerprint"]}))
"""


def test_two_worker_processes_with_one_fingerprint_train_once(prepared, tmp_path):
    """What `dvc queue start -j 2` does with two experiments of the same fingerprint, as two processes."""
    log = tmp_path / "sessions.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    args = [sys.executable, "-c", WORKER, str(prepared), str(tmp_path / "state"), str(log)]
    workers = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1][-500:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert results[0] == results[1] and results[0]["best"] == "weights"
    kinds = [line.split()[0] for line in log.read_text().splitlines()]
    # one session only, and the other worker did arrive while it ran (it waited on the lock, then reused it)
    assert sorted(kinds) == ["end", "start", "wait"] and kinds.index("wait") < kinds.index("end"), kinds
