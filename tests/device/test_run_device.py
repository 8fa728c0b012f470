"""ci/jetson/run-device.sh, the Jetson job, run as written on the device venv (Python 3.8 where there is one).

The preflight verifies the bundle before anything opens its model with ONNX Runtime; a bundle that fails
leaves ``measure.json`` with rule ``bundle_verified`` (exit 2), as ``measure`` does, never a crash with
no status that the gate would read as "runner offline". A board that is not ready leaves rule
``preflight`` (exit 6). A rerun clears an older run's verdict and reports from the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeproof.io import sha256_file
from tests.device.conftest import REPO, base_params, make_bundle
from tests.device.device_venv import device_venv
from tests.device.test_bundle import _with_external_data

HOT = REPO / "tests" / "fixtures" / "sysroot" / "x86-hot"


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A runner's checkout: the script, the code (PYTHONPATH=src), the base's params.yaml and the bundle."""
    root = tmp_path / "runner"
    (root / "ci" / "jetson").mkdir(parents=True)
    for script in ("run-device.sh", "engine-cache.sh"):  # engine-cache.sh: which engine cache it may use
        shutil.copyfile(REPO / "ci" / "jetson" / script, root / "ci" / "jetson" / script)
    (root / "src").symlink_to(REPO / "src")
    base_params(root, {}, name="params.yaml")
    make_bundle(root)
    cool = tmp_path / "cool"  # the recorded x86 machine, below the profile's temperature limit
    shutil.copytree(HOT, cool)
    for temp in cool.glob("sys/devices/virtual/thermal/thermal_zone*/temp"):
        temp.write_text("45000\n")
    return root


def _run(root: Path, sysroot: Path) -> tuple[int, Path, str]:
    python, _version = device_venv()
    env = {k: os.environ[k] for k in ("HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(
        PATH="/usr/bin:/bin",
        EDGEPROOF_DEVICE_PYTHON=str(python),
        EDGEPROOF_SYSROOT=str(sysroot),
        EDGEPROOF_ENGINE_CACHE=str(root.parent / "engines"),
    )
    script = ["bash", str(root / "ci" / "jetson" / "run-device.sh"), "cpu-ci"]
    proc = subprocess.run(script, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, root / "reports" / "device" / "cpu-ci", proc.stdout + proc.stderr


def _read(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


def test_a_ready_board_measures_and_an_older_verdict_is_cleared(checkout):
    out = checkout / "reports" / "device" / "cpu-ci"
    out.mkdir(parents=True)
    for old in ("gate.json", "gate.md", "preflight.json"):  # a previous run's PASS
        (out / old).write_text("PASSED")
    code, out, log = _run(checkout, checkout.parent / "cool")
    assert code == 0, log
    assert _read(out, "measure.json")["status"] == "measured" and _read(out, "preflight.json")["ready"] is True
    assert not (out / "gate.json").exists() and not (out / "gate.md").exists()


def test_a_truncated_manifest_is_the_bundles_refusal_not_a_missing_result(checkout):
    manifest = checkout / "release" / "bundle" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:200])
    code, out, log = _run(checkout, checkout.parent / "cool")
    status = _read(out, "measure.json")
    assert code == 2 and status["rule"] == "bundle_verified" and status["exit_code"] == 2, log
    assert "manifest.json: not valid JSON" in status["reason"]
    assert [c["name"] for c in _read(out, "preflight.json")["checks"]] == ["bundle_verified"]


def test_a_model_with_external_data_is_refused_before_onnxruntime_opens_it(checkout):
    secret = checkout.parent / "board_file.bin"  # a file on the board, at an absolute path
    _with_external_data(checkout / "release" / "bundle", str(secret), secret)
    code, out, log = _run(checkout, checkout.parent / "cool")
    status = _read(out, "measure.json")
    assert code == 2 and status["rule"] == "bundle_verified" and "keep their data outside" in status["reason"], log
    checks = [c["name"] for c in _read(out, "preflight.json")["checks"]]
    assert checks == ["bundle_verified"]  # no providers_load: no session was ever created on it


def test_a_board_that_is_not_ready_is_the_preflights_refusal(checkout):
    code, out, log = _run(checkout, HOT)
    status = _read(out, "measure.json")
    assert code == 6 and status["rule"] == "preflight" and "temperature (hottest" in status["reason"], log
    assert not (out / "bench.json").exists()


def test_a_preflight_that_crashes_still_prints_a_report_and_leaves_a_status(bundle, tmp_path, monkeypatch, capsys):
    import edgeproof.device.preflight as preflight_mod
    from edgeproof.device.__main__ import main

    def broken(*_a, **_k):
        raise OSError("/sys/class/thermal: Input/output error")

    monkeypatch.setattr(preflight_mod, "preflight", broken)
    out = tmp_path / "reports" / "device" / "cpu-ci"
    out.mkdir(parents=True)
    (out / "gate.md").write_text("PASSED")  # an older run's verdict
    argv = ["preflight", "--bundle", str(bundle), "--profile", "cpu-ci", "--refusal-out", str(out / "measure.json")]
    assert main(argv) == 6
    report = json.loads(capsys.readouterr().out)
    assert report["ready"] is False and "OSError: /sys/class/thermal" in report["checks"][0]["detail"]
    status = _read(out, "measure.json")
    assert status["rule"] == "preflight" and "crashed: OSError" in status["reason"]
    assert status["bundle_manifest_sha256"] == sha256_file(bundle / "manifest.json")  # which bundle was refused
    assert not (out / "gate.md").exists()
