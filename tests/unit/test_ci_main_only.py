"""What only main's own commit may do in device-gate.yml, and the board's token kept off command lines.

- ``ci/main_push.sh``: a ``workflow_run`` whose ``head_branch`` is ``main`` is main's push only if its commit
  is on ``refs/heads/main`` (a tag called ``main`` on an unreviewed commit is not): it guards the baseline
  upload, judging without a baseline and the MLflow job.
- ``ci/jetson/engine-cache.sh``: the board's shared TensorRT engine cache (engines are executable) is used
  by main's own commit only, as ``ci/main_push.sh`` decides it in the board's own checkout; a pull request's
  job gets a job-local folder.
- the Jetson job's ``git fetch`` of the base commit: the job token never appears in any process's
  command line (``/proc/<pid>/cmdline`` is readable by every local account), yet is sent.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A clone as the gate job's full-history checkout has it: main's history, and a tag called main on a
    commit that is on no branch (a writer's unreviewed push)."""
    origin = tmp_path / "origin"
    origin.mkdir()
    _git(origin, "init", "-q", "-b", "main")
    for i in range(2):
        (origin / "f").write_text(str(i))
        _git(origin, "add", "f")
        _git(origin, "commit", "-q", "-m", f"main {i}")
    _git(origin, "checkout", "-q", "-b", "side")
    (origin / "f").write_text("unreviewed")
    _git(origin, "commit", "-qam", "unreviewed")
    side = _git(origin, "rev-parse", "HEAD")
    _git(origin, "tag", "main", side)
    _git(origin, "checkout", "-q", "main")
    _git(origin, "branch", "-q", "-D", "side")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(origin), str(clone))  # refs/remotes/origin/main, and the tag
    for rel in ("ci/main_push.sh", "ci/jetson/engine-cache.sh"):
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, clone / rel)
    old = _git(clone, "rev-parse", "HEAD~1")
    return clone, {"head": _git(clone, "rev-parse", "HEAD"), "older": old, "tagged": side}


def _main_push(clone: Path, claims: str, sha: str, tmp_path: Path) -> tuple[str, str]:
    out = tmp_path / "github_output"
    out.write_text("")
    env = {"PATH": os.environ["PATH"], "CLAIMS_MAIN_PUSH": claims, "HEAD_SHA": sha, "GITHUB_OUTPUT": str(out)}
    proc = subprocess.run(["bash", "ci/main_push.sh"], cwd=clone, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out.read_text().strip(), proc.stderr


def test_a_push_to_main_is_main_only_if_its_commit_is_on_refs_heads_main(checkout, tmp_path):
    clone, sha = checkout
    assert _main_push(clone, "true", sha["head"], tmp_path)[0] == "main_push=true"
    assert _main_push(clone, "true", sha["older"], tmp_path)[0] == "main_push=true"  # main moved on since
    answer, why = _main_push(clone, "true", sha["tagged"], tmp_path)  # head_branch 'main': a tag of that name
    assert answer == "main_push=false" and "is not on refs/remotes/origin/main" in why
    assert _main_push(clone, "false", sha["head"], tmp_path)[0] == "main_push=false"  # a pull request
    assert _main_push(clone, "true", "f" * 40, tmp_path)[0] == "main_push=false"  # no such commit
    assert _main_push(clone, "true", "main", tmp_path)[0] == "main_push=false"  # a name, not a sha


def _cache(clone: Path, claims: str, sha: str, tmp_path: Path) -> str:
    env = {"PATH": os.environ["PATH"], "CLAIMS_MAIN_PUSH": claims, "HEAD_SHA": sha}
    env.update(EDGEPROOF_ENGINE_CACHE="/var/cache/edgeproof/engines", RUNNER_TEMP=str(tmp_path / "job-temp"))
    cmd = ["bash", "ci/jetson/engine-cache.sh"]
    proc = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_only_mains_own_commit_uses_the_boards_shared_engine_cache(checkout, tmp_path):
    clone, sha = checkout  # the board's checkout is the base commit, github.sha: here main's head
    assert _cache(clone, "true", sha["head"], tmp_path) == "/var/cache/edgeproof/engines"
    job_local = str(tmp_path / "job-temp" / "edgeproof-engines")
    assert _cache(clone, "false", sha["head"], tmp_path) == job_local  # a pull request of that very commit
    assert _cache(clone, "true", sha["tagged"], tmp_path) == job_local  # a tag called main
    assert _cache(clone, "true", sha["older"], tmp_path) == job_local  # not the code on the board: in doubt, local
    _git(clone, "checkout", "-q", "--detach", sha["tagged"])  # the board's code is a commit main never had
    assert _cache(clone, "true", sha["tagged"], tmp_path) == job_local  # its own commit, yet not main's push


def _board_checkout(origin: str, base_sha: str, work: Path) -> None:
    """The Jetson job's first step, as device-gate.yml has it, fetching from ``origin`` (a local path: no token
    is needed, the header is only configured), then the ci/ scripts the base commit would bring."""
    wf = yaml.safe_load((REPO / ".github/workflows/device-gate.yml").read_text())
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work.parent), "TOKEN": "t", "BASE_SHA": base_sha}
    env["REPO_URL"] = f"file://{origin}"
    step = wf["jobs"]["jetson"]["steps"][0]["run"]
    subprocess.run(["bash", "-eo", "pipefail", "-c", step], cwd=work, env=env, check=True, capture_output=True)
    for rel in ("ci/main_push.sh", "ci/jetson/engine-cache.sh"):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, work / rel)


def test_the_boards_own_checkout_lets_main_push_sh_prove_mains_commit(checkout, tmp_path):
    """engine-cache.sh asks ci/main_push.sh, the one proof of a push to main: the board's depth-1 fetch brings
    main's tip for it. A commit only a tag called main reaches, checked out and claimed as main's, is not
    main's; nor, failing closed, is a commit the shallow history cannot show on main (main moved on)."""
    _, sha = checkout
    origin = tmp_path / "origin"
    job_local = str(tmp_path / "job-temp" / "edgeproof-engines")
    for name, want in (("head", "/var/cache/edgeproof/engines"), ("tagged", job_local), ("older", job_local)):
        work = tmp_path / f"board-{name}"
        _board_checkout(str(origin), sha[name], work)
        assert _git(work, "rev-parse", "HEAD") == sha[name]
        assert _cache(work, "true", sha[name], tmp_path) == want, name


def test_run_device_sh_measures_with_the_folder_engine_cache_sh_names(checkout, tmp_path):
    """The Jetson job's script, with a stand-in device Python that records the cache each call is given."""
    clone, sha = checkout
    shutil.copy(REPO / "ci/jetson/run-device.sh", clone / "ci/jetson/run-device.sh")
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$3 $EDGEPROOF_ENGINE_CACHE" >> "$CALLS"\necho "{}"\n')  # $3: the subcommand
    fake.chmod(0o755)
    for claims, want in (("true", "/var/cache/edgeproof/engines"), ("false", str(tmp_path / "t/edgeproof-engines"))):
        calls = tmp_path / f"calls-{claims}"
        env = {"PATH": os.environ["PATH"], "EDGEPROOF_DEVICE_PYTHON": str(fake), "CALLS": str(calls)}
        env.update(CLAIMS_MAIN_PUSH=claims, HEAD_SHA=sha["head"], RUNNER_TEMP=str(tmp_path / "t"))
        env["EDGEPROOF_ENGINE_CACHE"] = "/var/cache/edgeproof/engines"  # as the runner's unit sets it
        proc = subprocess.run(["bash", "ci/jetson/run-device.sh", "p"], cwd=clone, env=env, capture_output=True)
        assert proc.returncode == 0, proc.stderr
        assert calls.read_text().split("\n")[:2] == [f"preflight {want}", f"measure {want}"]


class _Listener:
    """A TCP server that reads one HTTP request, then (while the client waits) lists every process whose
    command line holds ``needle``, and closes."""

    def __init__(self, needles: list[str]) -> None:
        self.needles, self.request, self.seen = needles, b"", []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(10)
        while b"\r\n\r\n" not in self.request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            self.request += chunk
        for proc in Path("/proc").iterdir():  # the client is blocked on our answer: its processes are alive
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(n in cmdline for n in self.needles):
                self.seen.append(cmdline)
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()


def test_the_boards_fetch_sends_the_token_but_never_on_a_command_line(tmp_path):
    wf = yaml.safe_load((REPO / ".github/workflows/device-gate.yml").read_text())
    step = wf["jobs"]["jetson"]["steps"][0]
    token = "ghs_FAKEFAKEFAKE"
    b64 = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    server = _Listener([token, b64])
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TOKEN": token, "BASE_SHA": "a" * 40}
    env["REPO_URL"] = f"http://127.0.0.1:{server.port}/o/r"
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=work, env=env, capture_output=True)
    server.thread.join(10)
    assert proc.returncode != 0  # the fake answers 404: no commit fetched
    assert f"authorization: basic {b64}".lower() in server.request.decode().lower()  # the fetch authenticated
    assert server.seen == []  # ... and no process showed the token on its command line
    config = (work / ".git/config").read_text()
    assert b64 not in config and "extraheader" not in config  # removed after the fetch, even a failed one
