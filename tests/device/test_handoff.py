"""The hand-off, both sides, as CI runs it.

Build side: a fresh clone runs ``dvc repro`` of the ``bundle`` stage from a release report (the
release stage is another branch's; the fixture follows the shared contract). Runner: a second fresh
clone with ONLY the device dependencies (a Python 3.8 venv: numpy, Pillow, PyYAML, onnxruntime; no
torch, ultralytics, DVC, MLflow, pydantic) gets the bundle like a downloaded artifact and runs
``python -m edgeproof.device measure`` with ``PYTHONPATH=src``. Gate: back on the build clone,
``edgeproof device-gate`` judges the results, as the hosted job does. Then the refusals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.device.builders import write_build_side
from tests.device.conftest import profiles_raw
from tests.device.device_venv import FORBIDDEN, device_venv, installed
from tests.pipeline.repo_copy import env_for, set_params

pytestmark = pytest.mark.pipeline
REPO = Path(__file__).resolve().parents[2]
HOT = "tests/fixtures/sysroot/x86-hot"


def fresh_clone(dest: Path) -> Path:
    """``git clone`` of this repository; while developing, uncommitted files are laid over it."""
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dest)], check=True)
    changed = subprocess.run(
        ["git", "ls-files", "-m", "-o", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in changed:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / rel, dest / rel)
    return dest


def _build_env(root: Path) -> dict[str, str]:
    env = env_for(root)
    env["PYTHONPATH"] = f"{root / 'src'}{os.pathsep}{root}"  # this checkout's code, not an installed one
    return env


def _device_env() -> dict[str, str]:
    keep = ("HOME", "LANG", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PATH="/usr/bin:/bin", PYTHONPATH="src")  # the contract: run from a checkout with PYTHONPATH=src
    return env


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    base = tmp_path_factory.mktemp("handoff")
    build = fresh_clone(base / "build")
    set_params(build, {"profiles": profiles_raw(), "bundle": {"max_val_images": 5, "seed": 3}})
    write_build_side(build, list(profiles_raw()))
    dvc = [str(Path(sys.executable).parent / "dvc"), "repro", "--single-item", "bundle"]
    proc = subprocess.run(dvc, cwd=build, env=_build_env(build), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (build / "release/bundle/manifest.json").exists()
    runner = fresh_clone(base / "runner")
    shutil.copytree(build / "release" / "bundle", runner / "release" / "bundle")  # the downloaded artifact
    python, version = device_venv()
    return {"build": build, "runner": runner, "python": python, "version": version}


def measure(sides, profile: str, *extra: str, bundle: str = "release/bundle") -> tuple[int, dict]:
    out = f"reports/device/{profile}"
    cmd = [
        str(sides["python"]),
        "-m",
        "edgeproof.device",
        *extra,
        "measure",
        "--bundle",
        bundle,
        "--profile",
        profile,
        "--out",
        out,
    ]
    proc = subprocess.run(cmd, cwd=sides["runner"], env=_device_env(), capture_output=True, text=True, timeout=300)
    status = json.loads((sides["runner"] / out / "measure.json").read_text())
    assert status["exit_code"] == proc.returncode, proc.stderr
    return proc.returncode, status


def gate(sides, profile: str, bundle: str = "release/bundle") -> tuple[int, dict, str]:
    """Bring the runner's results back (the uploaded artifact) and run the device gate on the build side."""
    results = sides["build"] / "reports" / "device" / profile
    shutil.rmtree(results, ignore_errors=True)
    shutil.copytree(sides["runner"] / "reports" / "device" / profile, results)
    bundle_dir = sides["build"] / bundle
    if not bundle_dir.exists():
        shutil.copytree(sides["runner"] / bundle, bundle_dir)
    cmd = [
        sys.executable,
        "-m",
        "edgeproof.cli",
        "device-gate",
        "--bundle",
        bundle,
        "--profile",
        profile,
        "--results",
        f"reports/device/{profile}",
    ]
    proc = subprocess.run(cmd, cwd=sides["build"], env=_build_env(sides["build"]), capture_output=True, text=True)
    report = json.loads((results / "gate.json").read_text())
    return proc.returncode, report, (results / "gate.md").read_text()


def test_runner_has_only_the_device_dependencies(sides):
    names = installed(sides["python"])
    assert {"numpy", "pillow", "pyyaml", "onnxruntime"} <= names
    assert not names & FORBIDDEN, names & FORBIDDEN
    if not sides["version"].startswith("3.8."):
        pytest.skip(f"no Python 3.8 on this machine: the runner venv uses {sides['version']}")


def test_the_runner_downloads_the_bundle_artifact_with_its_own_python(sides, tmp_path):
    """ci/jetson/fetch-bundle.sh as the Jetson job runs it (REST API, no JavaScript action), with the
    device venv's Python, against a fake GitHub serving the bundle zipped as upload-artifact does."""
    from tests.unit.test_ci_artifacts import TOKEN, FakeGitHub, zip_of

    bundle = sides["build"] / "release" / "bundle"
    files = {p.relative_to(bundle).as_posix(): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}
    github = FakeGitHub()
    try:
        github.add(42, 1, "release-bundle", zip_of(files), "2026-12-06T00:00:00Z")
        env = {**_device_env(), "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": github.url}
        env["EDGEPROOF_DEVICE_PYTHON"] = str(sides["python"])
        proc = subprocess.run(
            ["bash", "ci/jetson/fetch-bundle.sh", "42"], cwd=sides["runner"], env=env, capture_output=True, text=True
        )
    finally:
        github.server.shutdown()
    assert proc.returncode == 0, proc.stderr
    verify = [str(sides["python"]), "-m", "edgeproof.device", "verify", "--bundle", "release/bundle"]
    proc = subprocess.run(verify, cwd=sides["runner"], env=_device_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_handoff_passes_and_the_gate_writes_the_pr_report(sides):
    code, status = measure(sides, "cpu-ci")
    assert code == 0 and status["status"] == "measured" and not status["throttled"]
    ev = json.loads((sides["runner"] / "reports/device/cpu-ci/eval.json").read_text())
    assert not ev["scored"]  # no pycocotools on the runner: the gate scores the detections
    bench = json.loads((sides["runner"] / "reports/device/cpu-ci/bench.json").read_text())
    assert bench["energy"]["measurable"] is False and bench["energy"]["reason"]  # issue 20: no power source here
    assert bench["energy_mj_per_frame"] is None and bench["peak_memory_mb"] > 0
    # four fast frames: a leak rate where four RSS samples were taken, else not judged and said why
    leak = (False, None) if bench["memory"]["rss_samples"] >= 4 else (None, bench["memory"]["leak_reason"])
    assert (bench["memory_leak"], bench["memory"]["leak_reason"]) == leak and (leak[0] is False or leak[1])
    assert bench["device_name"] and bench["image_backend"] in ("opencv", "pillow")
    code, report, md = gate(sides, "cpu-ci")
    print(f"\n--- device gate report (runner Python {sides['version']}) ---\n{md}")
    assert code == 0 and report["verdict"] == "pass", md
    assert "not measurable (" in md and "peak MB" in md  # the PR comment says why there is no energy figure
    manifest = json.loads((sides["build"] / "release/bundle/manifest.json").read_text())
    release = json.loads((sides["build"] / "reports/release.json").read_text())
    assert report["model_sha256"] == manifest["profiles"]["cpu-ci"]["sha256"] == release["profiles"]["cpu-ci"]["sha256"]
    assert manifest["val"]["images"] == 5 and report["measured"]["map50"] == 1.0
    assert "same_model_released" in {r["name"] for r in report["rules"]}


def test_refusal_tampered_model_byte(sides):
    tampered = sides["runner"] / "release" / "tampered"
    shutil.copytree(sides["runner"] / "release" / "bundle", tampered)
    model = tampered / "models" / "fp32.onnx"
    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF
    model.write_bytes(bytes(data))
    code, status = measure(sides, "cpu-ci", bundle="release/tampered")
    assert code == 2 and status["rule"] == "bundle_verified" and "models/fp32.onnx: sha256" in status["reason"]
    code, report, md = gate(sides, "cpu-ci", bundle="release/tampered")
    assert code == 1 and report["failed"][0] == "bundle_verified" and "models/fp32.onnx" in md


def test_refusal_threshold_not_met(sides):
    assert measure(sides, "cpu-ci-strict")[0] == 0
    code, report, _ = gate(sides, "cpu-ci-strict")
    assert code == 1 and report["failed"] == ["fps"]


def test_refusal_profile_not_matching_the_machine(sides):
    code, status = measure(sides, "jetson-orin-nano")
    assert code == 4 and status["rule"] == "machine_match" and "jetson_model" in status["reason"]
    code, report, _ = gate(sides, "jetson-orin-nano")  # the wrong board says nothing about the model
    assert code == 3 and report["verdict"] == "inconclusive" and "machine_match" in report["failed"]


def test_refusal_missing_provider(sides):
    code, status = measure(sides, "cpu-cuda")
    assert code == 5 and status["rule"] == "providers" and "CUDAExecutionProvider" in status["reason"]
    code, report, _ = gate(sides, "cpu-cuda")  # the board lacks the provider: its set-up, not the model
    assert code == 3 and report["verdict"] == "inconclusive" and "providers" in report["failed"]


def test_throttled_run_is_inconclusive(sides):
    code, status = measure(sides, "cpu-ci", "--sysroot", HOT)
    assert code == 0 and status["throttled"]
    code, report, md = gate(sides, "cpu-ci")
    assert code == 3 and report["verdict"] == "inconclusive" and "x86_pkg_temp" in md


def test_bundle_profiles_are_the_params_profiles(sides):
    bundled = json.loads((sides["build"] / "release/bundle/profiles.json").read_text())
    params = yaml.safe_load((sides["build"] / "params.yaml").read_text())["profiles"]
    assert set(bundled) == set(params) and bundled["cpu-ci"]["runs"] == params["cpu-ci"]["runs"]


def test_every_device_module_imports_on_the_runner(sides):
    """The Python 3.8 check at run time: each device-side module imports in the runner venv."""
    src = sides["runner"] / "src"
    files = [p for folder in ("runtime", "device") for p in (src / "edgeproof" / folder).glob("*.py")]
    modules = [".".join(p.relative_to(src).with_suffix("").parts) for p in files if p.name != "__main__.py"]
    modules += ["edgeproof.settings", "edgeproof.profiles", "edgeproof.io"]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    proc = subprocess.run(
        [str(sides["python"]), "-c", code, *modules],
        cwd=sides["runner"],
        env=_device_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_hosted_gate_job_locally(sides, tmp_path):
    """ci/device_gate.py as the gate job runs it, minus GitHub and MLflow: the comment the PR gets."""
    assert measure(sides, "cpu-ci")[0] == 0
    results = sides["build"] / "reports/device/cpu-ci"
    shutil.rmtree(results, ignore_errors=True)
    shutil.copytree(sides["runner"] / "reports/device/cpu-ci", results)
    diff = tmp_path / "metrics-diff.md"
    diff.write_text(
        "| Path | Metric | HEAD | main | Change |\n|---|---|---|---|---|\n"
        "| metrics/eval.json | map50 | 1 | 0.9 | 0.1 |\n"
    )
    comment = tmp_path / "comment.md"
    cmd = [
        sys.executable,
        "ci/device_gate.py",
        "--profile",
        "cpu-ci",
        "--metrics-diff",
        str(diff),
        "--comment-out",
        str(comment),
    ]
    proc = subprocess.run(cmd, cwd=sides["build"], env=_build_env(sides["build"]), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    body = comment.read_text()
    assert body.startswith("<!-- edgeproof-device-gate -->") and "PASSED" in body and "| metrics/eval.json |" in body
    assert "`cpu-ci`: no baseline on main: regression not judged" in body


def test_the_hosted_gate_job_says_inconclusive_when_no_results_arrived(sides, tmp_path):
    """The board never reported (runner offline): exit 3 and the reason, never a fail."""
    comment = tmp_path / "comment.md"
    cmd = [sys.executable, "ci/device_gate.py", "--profile", "jetson-nano", "--results-root", str(tmp_path / "r")]
    cmd += ["--jetson-result", "failure", "--comment-out", str(comment)]
    proc = subprocess.run(cmd, cwd=sides["build"], env=_build_env(sides["build"]), capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "INCONCLUSIVE" in comment.read_text() and "runner offline" in comment.read_text()
