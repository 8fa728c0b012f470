"""ci/artifacts.py against a fake GitHub on 127.0.0.1: the board's bundle download and main's baseline.

The fake answers like GitHub's REST API: ``GET /repos/o/r/actions/runs/{id}/artifacts?name=``,
``GET /repos/o/r/actions/artifacts?name=`` and ``.../artifacts/{id}/zip``, which redirects to a
pre-signed blob URL that refuses any request carrying an Authorization header (as Azure blob
storage does). The archives are laid out as upload-artifact v4+ lays them out: one uploaded folder
is the archive's root.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "ghs_faketoken"


def zip_of(files: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16  # a symlink entry
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


class FakeGitHub:
    def __init__(self) -> None:
        self.runs: dict[int, list[dict]] = {}
        self.meta: dict[int, dict] = {}  # GET /actions/runs/{id}: the run itself
        self.blobs: dict[int, bytes] = {}
        self.seen: list[tuple[str, str | None]] = []
        self.pages = 0  # artifact list pages served
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                outer.seen.append((self.path, self.headers.get("Authorization")))
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                query = parse_qs(url.query)
                if parts[0] == "blob":
                    if self.headers.get("Authorization"):
                        return self._send(400, b"auth header on a pre-signed URL")
                    return self._send(200, outer.blobs[int(parts[1])], "application/zip")
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, b'{"message": "Bad credentials"}')
                if parts[-1] == "zip":
                    self.send_response(302)
                    self.send_header("Location", f"/blob/{parts[-2]}?sig=presigned")
                    self.end_headers()
                    return None
                if parts[3:5] == ["actions", "runs"] and len(parts) == 6:
                    return self._send(200, json.dumps(outer.meta.get(int(parts[5]), {})).encode())
                if parts[3:5] == ["actions", "runs"]:
                    arts = outer.runs.get(int(parts[5]), [])
                else:
                    arts = [a for run in outer.runs.values() for a in run]
                arts = [a for a in arts if a["name"] == query["name"][0]]
                arts.sort(key=lambda a: a["created_at"], reverse=True)  # as GitHub seems to (undocumented)
                size, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
                outer.pages += 1
                chunk = arts[(page - 1) * size : page * size]
                return self._send(200, json.dumps({"total_count": len(arts), "artifacts": chunk}).encode())

            def _send(self, code, body, ctype="application/json"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(
        self,
        run_id: int,
        art_id: int,
        name: str,
        data: bytes,
        created: str,
        expired: bool = False,
        run: dict | None = None,
    ) -> None:
        """An artifact of run ``run_id``; ``run``: that run's fields (default: device-gate.yml for main)."""
        self.blobs[art_id] = data
        meta = {"path": ".github/workflows/device-gate.yml", "event": "workflow_run", "head_branch": "main"}
        meta.update({"head_repository_id": 7, **(run or {})})
        self.meta[run_id] = meta
        self.runs.setdefault(run_id, []).append(
            {
                "id": art_id,
                "name": name,
                "expired": expired,
                "created_at": created,
                "archive_download_url": f"{self.url}/repos/o/r/actions/artifacts/{art_id}/zip",
                "workflow_run": {
                    "id": run_id,
                    "head_branch": meta["head_branch"],
                    "head_repository_id": meta["head_repository_id"],
                },
            }
        )


@pytest.fixture
def github():
    gh = FakeGitHub()
    yield gh
    gh.server.shutdown()


def artifacts(gh: FakeGitHub, *args: str, token: str = TOKEN, python: str = sys.executable):
    env = {"PATH": os.environ["PATH"], "GITHUB_TOKEN": token, "GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": gh.url}
    env["GITHUB_REPOSITORY_ID"] = "7"
    cmd = [python, str(REPO / "ci" / "artifacts.py"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_the_board_downloads_the_runs_bundle_without_leaking_the_token_to_storage(github, tmp_path):
    github.add(41, 1, "release-bundle", zip_of({"manifest.json": b"{}"}), "2026-12-01T00:00:00Z")
    bundle = zip_of({"manifest.json": b'{"ok": 1}', "models/fp16.onnx": b"onnx"})
    github.add(42, 2, "release-bundle", bundle, "2026-12-02T00:00:00Z")
    github.add(42, 3, "build-report", zip_of({"release.json": b"{}"}), "2026-12-02T00:00:00Z")
    proc = artifacts(github, "download", "--run-id", "42", "--name", "release-bundle", "--dest", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "b/manifest.json").read_text() == '{"ok": 1}' and (tmp_path / "b/models/fp16.onnx").exists()
    blob = [auth for path, auth in github.seen if path.startswith("/blob/")]
    assert blob == [None]  # the redirect to storage was followed without the repository token
    assert all(auth == f"Bearer {TOKEN}" for path, auth in github.seen if path.startswith("/repos/"))


def test_a_missing_artifact_or_a_bad_token_is_a_clear_error(github, tmp_path):
    proc = artifacts(github, "download", "--run-id", "7", "--name", "release-bundle", "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1 and "workflow run 7 has no (unexpired) artifact named 'release-bundle'" in proc.stderr
    github.add(8, 9, "release-bundle", zip_of({"a": b"1"}), "2026-12-01T00:00:00Z")
    proc = artifacts(
        github, "download", "--run-id", "8", "--name", "release-bundle", "--dest", str(tmp_path / "b"), token="x"
    )
    assert proc.returncode == 1 and "HTTP 401" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("files", "symlink", "why"),
    [
        ({"../escape.txt": b"x"}, None, "leaves"),
        ({"/abs.txt": b"x"}, None, "leaves"),
        ({"ok": b"1"}, "link", "plain file"),
    ],
)
def test_an_archive_that_would_write_outside_or_plant_a_link_is_refused(github, tmp_path, files, symlink, why):
    github.add(5, 6, "release-bundle", zip_of(files, symlink), "2026-12-01T00:00:00Z")
    proc = artifacts(
        github, "download", "--run-id", "5", "--name", "release-bundle", "--dest", str(tmp_path / "d" / "b")
    )
    assert proc.returncode == 1 and why in proc.stderr, proc.stderr
    assert not (tmp_path / "d" / "escape.txt").exists() and not (tmp_path / "d" / "b" / "link").exists()


def _ci_artifacts():
    sys.path.insert(0, str(REPO / "ci"))
    try:
        import artifacts as ci_artifacts
    finally:
        sys.path.remove(str(REPO / "ci"))
    return ci_artifacts


def _deflated(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """Only the download was capped: 64 MiB of zeros in a 64 KiB archive would have been read into memory."""
    ci_artifacts = _ci_artifacts()
    monkeypatch.setattr(ci_artifacts, "MAX_EXTRACTED", 32 * 1024**2)
    bomb = _deflated({"ok.txt": b"1", "zeros.bin": bytes(64 * 1024**2)})
    assert len(bomb) < 200_000
    with pytest.raises(ci_artifacts.ArtifactError, match="would extract to 67108865 bytes"):
        ci_artifacts.safe_extract(bomb, tmp_path / "b")
    assert not list((tmp_path / "b").iterdir())
    monkeypatch.setattr(ci_artifacts, "MAX_MEMBERS", 10)
    with pytest.raises(ci_artifacts.ArtifactError, match="has 11 files"):
        ci_artifacts.safe_extract(_deflated({f"f{i}": b"" for i in range(11)}), tmp_path / "c")


def test_a_member_that_lies_about_its_size_is_refused(github, tmp_path):
    """The central directory says 100 bytes; the data is 8 MiB: at most the declared bytes are written."""
    data = bytearray(_deflated({"small.bin": bytes(8 * 1024**2)}))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # uncompressed size
    github.add(5, 6, "release-bundle", bytes(data), "2026-12-01T00:00:00Z")
    proc = artifacts(github, "download", "--run-id", "5", "--name", "release-bundle", "--dest", str(tmp_path / "b"))
    assert proc.returncode == 1 and "artifact 'release-bundle':" in proc.stderr, proc.stderr
    assert (tmp_path / "b/small.bin").stat().st_size <= 100


def test_the_byte_count_is_of_what_was_written_not_of_the_header(tmp_path, monkeypatch):
    ci_artifacts = _ci_artifacts()
    monkeypatch.setattr(ci_artifacts, "MAX_EXTRACTED", 10)
    with pytest.raises(ci_artifacts.ArtifactError, match="'m' extracts past 10 bytes"):
        ci_artifacts._copy_capped(io.BytesIO(b"x" * 11), io.BytesIO(), 10, "m")


def test_mains_newest_unexpired_baseline_is_found_in_the_upload_artifact_layout(github, tmp_path):
    """17.4: the gate job uploads ONE folder, ci-out/device-gate: the archive root is that folder."""
    old = zip_of({"jetson-orin-nano/gate.json": b'{"measured": {"fps_e2e": 1}}', "comment.md": b"x"})
    new = zip_of({"jetson-orin-nano/gate.json": b'{"measured": {"fps_e2e": 100000}}', "comment.md": b"x"})
    github.add(100, 10, "device-gate-main", old, "2026-12-01T00:00:00Z")
    github.add(101, 11, "device-gate-main", new, "2026-12-03T00:00:00Z")
    github.add(102, 12, "device-gate-main", old, "2026-12-05T00:00:00Z", expired=True)
    github.add(103, 13, "device-gate", old, "2026-12-06T00:00:00Z")  # a PR's verdict is never a baseline
    proc = artifacts(github, "latest", "--name", "device-gate-main", "--dest", str(tmp_path / "baseline"))
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "baseline/jetson-orin-nano/gate.json").read_text())
    assert got["measured"]["fps_e2e"] == 100000


@pytest.mark.parametrize(
    "run",
    [
        {"path": ".github/workflows/build.yml", "event": "pull_request"},  # a PR's build names it so
        {"head_branch": "evil-pr"},
        {"head_repository_id": 999},  # a fork
        {"event": "push"},
        {"path": ".github/workflows/device-gate.yml@refs/heads/evil-pr"},  # the file, but from another ref
        {"path": None},
    ],
)
def test_a_baseline_the_device_gate_workflow_did_not_make_for_main_is_ignored(github, tmp_path, run):
    """Any workflow can upload an artifact named device-gate-main; only device-gate.yml's for main counts."""
    real = zip_of({"jetson-orin-nano/gate.json": b'{"measured": {"fps_e2e": 60}}'})
    fake = zip_of({"jetson-orin-nano/gate.json": b'{"measured": {"fps_e2e": 0.001}}'})
    github.add(100, 10, "device-gate-main", real, "2026-12-01T00:00:00Z")
    github.add(101, 11, "device-gate-main", fake, "2026-12-03T00:00:00Z", run=run)  # newer
    proc = artifacts(github, "latest", "--name", "device-gate-main", "--dest", str(tmp_path / "baseline"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "baseline/jetson-orin-nano/gate.json").read_text())["measured"]["fps_e2e"] == 60
    assert "1 newer artifacts named 'device-gate-main' not made by .github/workflows/device-gate.yml" in proc.stderr
    assert "ignored: 11 (run 101: " in proc.stderr


def test_mains_baseline_is_found_behind_pages_of_newer_forged_artifacts(github, tmp_path):
    """A fork's workflows can upload 100+ artifacts named device-gate-main: main's must not fall off page 1."""
    github.add(100, 10, "device-gate-main", zip_of({"p/gate.json": b'{"fps": 60}'}), "2026-12-01T00:00:00Z")
    for i in range(250):
        run = {"head_repository_id": 999}
        github.add(1000 + i, 1000 + i, "device-gate-main", b"", f"2026-12-02T00:{i // 60:02d}:{i % 60:02d}Z", run=run)
    proc = artifacts(github, "latest", "--name", "device-gate-main", "--dest", str(tmp_path / "baseline"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "baseline/p/gate.json").read_text()) == {"fps": 60}
    assert github.pages == 3  # 100 + 100 + 51
    warnings = [line for line in proc.stderr.splitlines() if "not made by" in line]
    assert len(warnings) == 1 and "250 newer artifacts" in warnings[0] and "and 245 more" in warnings[0]


def test_too_many_pages_is_a_fetch_error_not_no_baseline(github, tmp_path, monkeypatch):
    """Past the page cap the look-up fails (exit 1: "could not be fetched"), never exit 4 ("none yet")."""
    ci_artifacts = _ci_artifacts()
    monkeypatch.setattr(ci_artifacts, "MAX_PAGES", 2)
    github.add(100, 10, "device-gate-main", zip_of({"p/gate.json": b"{}"}), "2026-12-01T00:00:00Z")
    for i in range(200):
        github.add(1000 + i, 1000 + i, "device-gate-main", b"", "2026-12-02T00:00:00Z", run={"head_branch": "x"})
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": github.url}
    env["GITHUB_REPOSITORY_ID"] = "7"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rc = ci_artifacts.main(["latest", "--name", "device-gate-main", "--dest", str(tmp_path / "b")])
    assert rc == 1 and github.pages == 2 and not (tmp_path / "b/p").exists()


def test_no_baseline_on_main_exits_4(github, tmp_path):
    proc = artifacts(github, "latest", "--name", "device-gate-main", "--dest", str(tmp_path / "baseline"))
    assert proc.returncode == 4 and "no artifact named 'device-gate-main'" in proc.stderr


@pytest.mark.parametrize("path", ["device-gate.yml@main", "device-gate.yml@refs/heads/main", "device-gate.yml"])
def test_mains_baseline_is_found_whether_the_runs_path_names_its_ref_or_not(github, tmp_path, path):
    """GitHub's REST reference shows a run's ``path`` as ``.github/workflows/build.yml@main``: main's genuine
    baseline in that form was refused, and the look-up said "none" (a pull request then passed unchecked)."""
    real = zip_of({"p/gate.json": b'{"fps": 60}'})
    github.add(100, 10, "device-gate-main", real, "2026-12-01T00:00:00Z", run={"path": ".github/workflows/" + path})
    proc = artifacts(github, "latest", "--name", "device-gate-main", "--dest", str(tmp_path / "baseline"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "baseline/p/gate.json").read_text()) == {"fps": 60}


def test_artifacts_found_but_none_accepted_is_not_none(github, tmp_path):
    """Exit 5 and a line of its own: look-alikes only (or a run format nobody foresaw) is not "none yet"."""
    fake = zip_of({"p/gate.json": b'{"fps": 0.001}'})
    github.add(101, 11, "device-gate-main", fake, "2026-12-03T00:00:00Z", run={"head_branch": "evil-pr"})
    proc = artifacts(github, "latest", "--name", "device-gate-main", "--dest", str(tmp_path / "baseline"))
    assert proc.returncode == 5 and not (tmp_path / "baseline").exists()
    assert "1 artifacts named 'device-gate-main' found, none accepted" in proc.stderr
    assert "ignored: 11 (run 101: head_branch 'evil-pr')" in proc.stderr
    assert "no artifact named" not in proc.stderr


def test_the_board_takes_the_newest_of_a_runs_same_name_artifacts_as_download_artifact_does(github, tmp_path):
    """download-artifact (the gate) takes the highest id of several same-name artifacts; the board took the
    API's first, so the two could judge and measure different bundles."""
    github.add(42, 101, "release-bundle", zip_of({"manifest.json": b'{"attempt": 1}'}), "2026-12-01T10:00:00Z")
    github.add(42, 202, "release-bundle", zip_of({"manifest.json": b'{"attempt": 2}'}), "2026-12-01T10:00:00Z")
    proc = artifacts(github, "download", "--run-id", "42", "--name", "release-bundle", "--dest", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "b/manifest.json").read_text()) == {"attempt": 2}
    assert "has 2 artifacts named 'release-bundle': the newest (highest id) is used" in proc.stderr


def test_fetch_bundle_sh_uses_the_device_python(github, tmp_path):
    """ci/jetson/fetch-bundle.sh as the Jetson job runs it: from a checkout, with the device interpreter."""
    checkout = tmp_path / "checkout"
    for rel in ("ci/artifacts.py", "ci/jetson/fetch-bundle.sh"):
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, checkout / rel)
    (checkout / "release/bundle").mkdir(parents=True)
    (checkout / "release/bundle/stale.onnx").write_text("left by an earlier run")
    github.add(77, 70, "release-bundle", zip_of({"manifest.json": b"{}"}), "2026-12-01T00:00:00Z")
    env = {"PATH": os.environ["PATH"], "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": github.url}
    env["EDGEPROOF_DEVICE_PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", "ci/jetson/fetch-bundle.sh", "77"], cwd=checkout, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (checkout / "release/bundle").iterdir()) == ["manifest.json"]


def test_artifacts_py_is_python_38_clean():
    vermin = shutil.which("vermin") or str(Path(sys.executable).parent / "vermin")
    proc = subprocess.run(
        [vermin, "-t=3.8-", "--no-tips", "--violations", str(REPO / "ci" / "artifacts.py")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
