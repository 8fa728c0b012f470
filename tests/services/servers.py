"""Real services for the tests, on loopback: PostgreSQL, an MLflow tracking server or UI, headless Chromium.

Each helper skips the test (with the reason) when the service cannot run on this machine, and stops
what it started, by process id, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EDGEPROOF_TEST_ARTIFACTS") or REPO / "test-artifacts")
"""Where tests leave files for people to look at (screenshots); git-ignored."""


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    """Wait until ``url`` answers 200; fail with the server's log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` (its whole process group, by its id)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    return Path(initdb).parent


@contextlib.contextmanager
def postgres(password: str) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port with a database ``mlflow`` owned by
    user ``edgeproof`` (password auth); yields its SQLAlchemy URI. As root it runs as ``postgres``."""
    bin_dir = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="edgeproof-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text(password)
    if prefix:
        shutil.chown(folder / "pw", "postgres")
    data, port = folder / "data", free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "edgeproof", "-A", "scram-sha-256",
                    f"--pwfile={folder / 'pw'}", "--no-sync"], **run)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "-t", "60", "start"], **run)  # fmt: skip
    try:
        env = {**os.environ, "PGPASSWORD": password}
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "edgeproof", "mlflow"],
                       env=env, **run)  # fmt: skip
        yield f"postgresql+psycopg2://edgeproof:{password}@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       check=False, capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(args: list[str], log: Path, command: str = "server") -> Iterator[str]:
    """``mlflow <command> <args>`` on a free loopback port; yields its URL once ``/health`` answers."""
    port = free_port()
    # one worker: the default 4 (also for `mlflow ui`) import MLflow 4 times, seconds of start-up on a small runner
    cmd = [sys.executable, "-m", "mlflow", command, *args, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc, log)
        yield url
    finally:
        stop(proc)


def chromium() -> str:
    """The headless browser's executable, or skip the test saying how to get one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    raise AssertionError  # unreachable


def browse(url: str, *, screenshot: Path | None = None, budget_ms: int = 15000, width: int = 1600) -> str:
    """Render ``url`` in headless Chromium; return the DOM (and write a PNG to ``screenshot``, same launch)."""
    with tempfile.TemporaryDirectory(prefix="edgeproof-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
        cmd += [f"--user-data-dir={profile}", f"--window-size={width},1000", f"--virtual-time-budget={budget_ms}"]
        cmd += [f"--screenshot={screenshot}", "--dump-dom"] if screenshot else ["--dump-dom"]
        proc = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"chromium exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout
