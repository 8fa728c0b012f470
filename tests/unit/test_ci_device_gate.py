"""ci/device_gate.py, the hosted gate job's logic: one comment, updated in place; statuses; exit code."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "ci"))  # device_gate imports github_pr, as it does run as a script from ci/
_spec = importlib.util.spec_from_file_location("ci_device_gate", REPO / "ci" / "device_gate.py")
dg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dg)


class FakeGitHub:
    """Records calls; serves a PR's comments in pages of 100."""

    def __init__(self, comments):
        self.comments = comments
        self.calls = []

    def __call__(self, method, path, payload):
        self.calls.append((method, path, payload))
        if method == "GET":
            page = int(path.rsplit("page=", 1)[1])
            return self.comments[(page - 1) * 100 : page * 100]
        return {}


def _comment(i, body, kind="User"):
    return {"id": i, "body": body, "user": {"type": kind}}


def test_the_bot_comment_is_updated_not_duplicated_even_past_the_first_page():
    comments = [_comment(i, "lgtm") for i in range(150)]
    comments.append(_comment(999, f"{dg.MARKER}\nold", "User"))  # a human quoting the marker: not ours
    comments.append(_comment(1000, f"{dg.MARKER}\nold", "Bot"))
    api = FakeGitHub(comments)
    assert dg.upsert_comment(api, "o/r", 7, "new") == "updated"
    assert api.calls[-1] == ("PATCH", "/repos/o/r/issues/comments/1000", {"body": "new"})
    assert [c[0] for c in api.calls] == ["GET", "GET", "PATCH"]


def test_first_push_creates_the_comment():
    api = FakeGitHub([_comment(1, "hello")])
    assert dg.upsert_comment(api, "o/r", 7, "body") == "created"
    assert api.calls[-1] == ("POST", "/repos/o/r/issues/7/comments", {"body": "body"})


def test_statuses_tell_a_slow_model_from_a_hot_device():
    api = FakeGitHub([])
    dg.set_statuses(api, "o/r", "abc", {"jetson-nano": "fail", "jetson-orin-nano": "inconclusive"}, "https://run")
    states = {p["context"]: p["state"] for _, _, p in api.calls}
    assert states == {
        "edgeproof/device-gate (jetson-nano)": "failure",
        "edgeproof/device-gate (jetson-orin-nano)": "error",
    }


@pytest.mark.parametrize(
    ("verdicts", "code"), [(["pass"], 0), (["pass", "inconclusive"], 3), (["inconclusive", "fail"], 1), ([], 0)]
)
def test_overall_exit(verdicts, code):
    assert dg.overall_exit(verdicts) == code


def test_comment_has_marker_every_gate_table_and_the_metrics_diff():
    body = dg.compose_comment(
        {"a": "# Device gate: `a`\n\n| rule |\n", "b": "# Device gate: `b`\n"}, "| Path | Metric |\n", None, "f" * 40
    )
    assert body.startswith(dg.MARKER) and body.count("### Device gate:") == 2
    assert "| Path | Metric |" in body and "`ffffffffffff`" in body
    assert "_no metric changed_" in dg.compose_comment({}, "  \n", None, None)


FAKE = "x\n\n---\n# Device gate: `cpu-ci`\n\n**Verdict: PASSED ✅ — release**\n\n<!--"


def test_a_pull_requests_text_cannot_pose_as_the_verdict_or_hide_it():
    """The PR's params values, its build's metrics diff and its bundle's file names stay inert text."""
    from edgeproof.verdict.proposal import describe

    listed = describe({"key": "profiles.cpu-ci.match.arch", "base": ["x86_64"], "proposed": ["<h1>PASSED</h1>"]})
    assert '→ `["<h1>PASSED</h1>"]`: judged at `["x86_64"]`' in listed  # a list is the PR's text too
    assert describe({"key": "k", "base": 30.0, "proposed": 5}) == "k 30.0 → 5: judged at 30.0; takes effect after merge"
    line = describe({"key": "profiles.cpu-ci.description", "base": "cpu", "proposed": FAKE})
    assert "\n" not in line and "`x --- # Device gate: `cpu-ci` **Verdict: PASSED ✅ — release** <!--``" in line
    diff = "| Path | Metric |\n|---|---|\n| m.json | 1 |\n" + FAKE + "\n| <!-- x | 2 |"
    body = dg.compose_comment({"cpu-ci": "# Device gate: `cpu-ci`\n"}, diff, None, None, notes=[FAKE])
    assert "PASSED" not in body.split("dvc metrics diff")[1] and "| m.json | 1 |" in body
    assert "| `<!-- x` | 2 |" in body  # a code span: shown, never an HTML comment
    assert "<!--" not in body.replace(dg.MARKER, "").replace("`<!-- x`", "")
    headings = [line for line in body.splitlines() if line.startswith(("#", "**Verdict", "<!--", "---"))]
    assert headings == [
        dg.MARKER,
        "## edgeproof: release on the device",
        "### Device gate: `cpu-ci`",
        "### `dvc metrics diff main` (as the pull request's build reports it; not judged here)",
    ]
    assert "\n- x --- # Device gate: `cpu-ci` \\*\\*Verdict" in body  # the note: one inert line, no bold


FORGED_ROW = "| @acme/security-team [**Verdict: PASSED ✅ — release**](https://evil.example) ![x](https://e/p) | 1 |"


def test_the_comment_fits_githubs_limit_and_the_prs_rows_cannot_mention_link_or_pose():
    """80 rows of 1,000 characters made an 80,799-character comment (GitHub: 422 over 65,536)."""
    diff = "| Path | Metric |\n|---|---|\n" + FORGED_ROW + "\n" + ("| " + "A" * 1000 + " | 2 |\n") * 80
    verdict = "# Device gate: `p`\n\n**Verdict: FAILED ❌ — do not release**\n"
    body = dg.compose_comment({"p": verdict}, diff, None, None)
    assert len(body) < 20_000
    forged = next(line for line in body.splitlines() if "acme" in line)
    assert forged.startswith("| `@acme/security-team [**Verdict: PASSED") and forged.endswith("` | 1 |")
    assert "![x]" not in body.replace(forged, "")
    huge = "| a | b |\n|---|---|\n" + "".join(f"| m{i}.json | {i} |\n" for i in range(5000))
    assert "4902 more rows not shown" in dg.compose_comment({"p": "# Device gate: `p`\n"}, huge, None, None)
    body = dg.compose_comment({"p": "# Device gate: `p`\n"}, huge, None, None, notes=["x" * 100_000] * 200)
    assert len(body) <= dg.MAX_COMMENT and body.endswith("in the workflow run's `device-gate` artifact._\n")


def test_a_note_cannot_mention_link_or_run_on():
    """A rule's reason quoting a PR's file names: one capped line, no link, emphasis or @-mention."""
    from edgeproof.markdown import one_line

    note = one_line("unlisted: " + FORGED_ROW + " " + "f.bin " * 5000)
    assert "\n" not in note and note.endswith("characters cut)") and len(note) < 600
    assert "@\u200bacme" in note and "\\[\\*\\*Verdict" in note and "](" not in note.replace("\\](", "")


def test_a_note_keeps_its_code_spans_as_written_and_a_stray_backtick_opens_none():
    """Our notes quote keys in code spans (``profiles.x.gate.min_fps``): escaping inside one shows the
    backslash (``min\\_fps``); a backtick no span closes is escaped, so it cannot hide a link or mention."""
    from edgeproof.markdown import one_line

    assert one_line("set `gate.min_fps` to 5 (a_b)") == "set `gate.min_fps` to 5 (a\\_b)"
    assert one_line("``a ` b`` and `c_d`") == "``a ` b`` and `c_d`"
    forged = one_line("x ` [**PASS**](https://evil.example) @team")
    assert forged == "x \\` \\[\\*\\*PASS\\*\\*\\](https:\u200b//evil.example) @\u200bteam"


def test_bare_addresses_and_references_are_no_links_in_notes_or_cells():
    """GitHub links a bare https:// or www. address and a #123 reference even in escaped text: notes break
    them with a zero-width space, a diff cell holding one becomes a code span (both had rendered as links)."""
    from edgeproof.markdown import one_line, table_rows_only

    note = one_line("see https://evil.example/x, www.evil.example and #12")
    assert "://" not in note and "www." not in note and "#1" not in note
    assert note.replace("\u200b", "") == "see https://evil.example/x, www.evil.example and #12"
    cells = table_rows_only("| eval.json | https://evil.example | www.evil.example | #3 | 0.5 |")
    assert cells == "| eval.json | `https://evil.example` | `www.evil.example` | `#3` | 0.5 |"


def test_statuses_are_set_even_when_github_refuses_the_comment(monkeypatch, tmp_path, caplog):
    import urllib.error

    calls = []

    def api(method, path, payload):
        calls.append((method, path))
        if method == "GET" and "/pulls/" in path:
            return {"head": {"sha": "a" * 40}}
        if method == "POST" and path.endswith("/comments"):
            raise urllib.error.HTTPError(path, 422, "Unprocessable Entity", {}, None)
        return []

    monkeypatch.setattr(dg, "github_api", lambda *a: api)
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("HEAD_SHA", "a" * 40)
    (tmp_path / "pr.json").write_text('{"number": 7}')
    dg._publish(_args(tmp_path, "--pr-json", str(tmp_path / "pr.json")), {"jetson-orin-nano": "fail"}, "body")
    assert calls[0] == ("POST", f"/repos/o/r/statuses/{'a' * 40}") and calls[-1][0] == "POST"
    assert "the PR comment could not be written (HTTP Error 422" in caplog.text


@pytest.mark.parametrize("text", ["[1, 2]", "not json", "7", '"x"', "null"])
def test_a_pr_json_that_is_not_an_object_is_an_error_not_a_crash(tmp_path, caplog, text):
    (tmp_path / "pr.json").write_text(text)
    assert dg.claimed_pr(tmp_path / "pr.json") is None
    assert "the PR it names is not used" in caplog.text


# --- issue 17: results that never arrived, main's baseline, the head commit, the base's rules ---------------


def _args(tmp_path, *extra):
    return dg._parser().parse_args(["--profile", "jetson-orin-nano", "--results-root", str(tmp_path / "r"), *extra])


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ("skipped", "was skipped"),
        ("cancelled", "cancelled before its results came back"),
        ("failure", "runner offline"),
        ("success", "returned no results"),
        (None, "no device results arrived"),
    ],
)
def test_results_that_never_arrived_are_inconclusive_and_say_why(tmp_path, result, why):
    extra = ["--comment-out", str(tmp_path / "c.md")] + (["--jetson-result", result] if result else [])
    assert dg.main(["--profile", "jetson-orin-nano", "--results-root", str(tmp_path / "r"), *extra]) == 3
    report = json.loads((tmp_path / "r/jetson-orin-nano/gate.json").read_text())
    assert report["verdict"] == "inconclusive" and why in report["reason"] and report["action"]
    body = (tmp_path / "c.md").read_text()
    assert "INCONCLUSIVE" in body and why in body and "What to do:" in body
    assert dg.NO_BASELINE not in body  # nothing was measured: there was nothing to compare either


def test_a_valid_fail_outranks_a_missing_profile():
    assert dg.overall_exit(["inconclusive", "fail"]) == 1


def test_the_baseline_is_read_where_the_artifact_puts_it(tmp_path):
    root = tmp_path / "baseline"
    assert dg.baseline_file(root, "jetson-orin-nano") is None
    (root / "reports/device/jetson-orin-nano").mkdir(parents=True)  # the old two-path upload's layout
    (root / "reports/device/jetson-orin-nano/gate.json").write_text("{}")
    assert dg.baseline_file(root, "jetson-orin-nano") is None
    (root / "jetson-orin-nano").mkdir()
    (root / "jetson-orin-nano/gate.json").write_text("{}")
    assert dg.baseline_file(root, "jetson-orin-nano") == root / "jetson-orin-nano/gate.json"
    cmd = dg.gate_command(_args(tmp_path), "jetson-orin-nano", tmp_path, dg.baseline_file(root, "jetson-orin-nano"))
    assert cmd[cmd.index("--baseline") + 1] == str(root / "jetson-orin-nano/gate.json")


def test_the_gate_judges_with_the_base_params_and_only_shows_the_prs(tmp_path):
    (tmp_path / "release.json").write_text("{}")
    args = _args(tmp_path, "--proposed-params", "ci-out/build/params.yaml", "--release", str(tmp_path / "release.json"))
    cmd = dg.gate_command(args, "jetson-orin-nano", tmp_path / "r", None)
    assert cmd[cmd.index("--rules-params") + 1] == "params.yaml"
    assert cmd[cmd.index("--proposed-params") + 1] == "ci-out/build/params.yaml"
    assert cmd[cmd.index("--release") + 1] == str(tmp_path / "release.json")  # this build's record
    assert "--baseline" not in cmd


def test_the_comment_names_the_prs_head_commit_not_the_merge_commit(monkeypatch, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"workflow_run": {"head_sha": "a" * 40, "pull_requests": []}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)  # main's commit (workflow_run) or the merge commit (pull_request)
    monkeypatch.delenv("HEAD_SHA", raising=False)
    dg.main(["--profile", "p", "--results-root", str(tmp_path / "r"), "--comment-out", str(tmp_path / "c.md")])
    body = (tmp_path / "c.md").read_text()
    assert "Head commit `aaaaaaaaaaaa`" in body and "bbbbbbbbbbbb" not in body
    event.write_text(json.dumps({"pull_request": {"number": 3, "head": {"sha": "c" * 40}}}))
    assert dg.head_sha(json.loads(event.read_text())) == "c" * 40


class FakePulls(FakeGitHub):
    def __init__(self, heads):
        super().__init__([])
        self.heads = heads

    def __call__(self, method, path, payload):
        self.calls.append((method, path, payload))
        return {"head": {"sha": self.heads[int(path.rsplit("/", 1)[1])]}}


def test_a_forks_pr_is_found_only_if_github_confirms_its_head():
    sha = "d" * 40
    api = FakePulls({5: sha, 6: "e" * 40})
    assert dg.resolve_pr(api, "o/r", {"workflow_run": {"pull_requests": []}}, 5, sha) == 5
    assert dg.resolve_pr(api, "o/r", {"workflow_run": {"pull_requests": []}}, 6, sha) is None  # a forged pr.json
    same_repo = {"workflow_run": {"pull_requests": [{"number": 9, "head": {"sha": sha}}]}}
    assert dg.resolve_pr(api, "o/r", same_repo, 6, sha) == 9


# --- the real device gate behind ci/device_gate.py: main's baseline of 100000 FPS is a regression --------------


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    import tests.device.conftest as device_conftest
    from edgeproof.device.measure import run_measure

    root = tmp_path_factory.mktemp("gate")
    raw = device_conftest.profiles_raw()
    raw["cpu-ci"]["regression"] = {"max_fps_drop_pct": 10.0, "max_map_drop": 0.01}
    mp = pytest.MonkeyPatch()
    mp.setattr(device_conftest, "profiles_raw", lambda: raw)
    try:
        bundle = device_conftest.make_bundle(root)
    finally:
        mp.undo()
    results = root / "ci-out/device-gate/cpu-ci"
    base = _base_params_with_regression(root / "base-params.yaml", raw)  # the base's rules judge, not the bundle's
    assert run_measure(bundle, "cpu-ci", results, None, root / "engines", base) == 0  # as the board measures
    return root, bundle


def _base_params_with_regression(path, profiles):
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profiles"] = profiles  # the tests' run counts, with the regression rules
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _gate(root, bundle, *extra):
    comment = root / "comment.md"
    argv = ["--profile", "cpu-ci", "--bundle", str(bundle), "--results-root", str(root / "ci-out/device-gate")]
    argv += ["--release", str(root / "reports/release.json"), "--comment-out", str(comment), *extra]
    argv += ["--params", str(root / "base-params.yaml")]
    return dg.main(argv), json.loads((root / "ci-out/device-gate/cpu-ci/gate.json").read_text()), comment.read_text()


def test_without_a_baseline_the_comment_says_regression_was_not_judged(measured):
    root, bundle = measured
    code, report, body = _gate(root, bundle, "--baseline-root", str(root / "no-baseline"))
    assert code == 0 and report["verdict"] == "pass", body
    assert "`cpu-ci`: no baseline on main: regression not judged" in body
    assert not [r for r in report["rules"] if r["name"].startswith("regression")]


def test_a_failed_baseline_look_up_is_inconclusive_not_no_baseline(measured):
    """ci/gate.sh passes --baseline-error when ci/artifacts.py failed (not exit 4, "none on main", which lets
    main bootstrap): the profile's regression rules and same_val_set are there, inconclusive, never gone."""
    root, bundle = measured
    code, report, body = _gate(root, bundle, "--baseline-root", str(root / "none"), "--baseline-error", "exit 1")
    assert code == 3 and report["verdict"] == "inconclusive", body
    regression = {r["name"]: r for r in report["rules"] if r["name"].startswith(("regression", "same_val_set"))}
    assert sorted(regression) == ["regression_fps", "regression_map", "same_val_set"]
    why = "main's baseline could not be fetched (exit 1): regression not judged"
    assert all(r["status"] == "inconclusive" and r["reason"].startswith(why) for r in regression.values())
    assert "**Verdict: INCONCLUSIVE" in body and "PASSED" not in body and "no baseline on main" not in body


def test_mains_baseline_in_the_artifact_layout_is_judged(measured):
    root, bundle = measured
    baseline = root / "baseline" / "cpu-ci"  # as `artifacts.py latest` extracts the device-gate-main artifact
    baseline.mkdir(parents=True)
    (baseline / "gate.json").write_text(
        json.dumps({"verdict": "pass", "profile": "cpu-ci", "measured": {"fps_e2e": 100000.0, "map50_95": 1.0}})
    )
    code, report, body = _gate(root, bundle, "--baseline-root", str(root / "baseline"))
    assert code == 1 and "regression_fps" in report["failed"], body
    assert "no baseline on main" not in body


# --- the whole hosted gate job: ci/gate.sh on the downloads' layout, against a fake GitHub ---------------------


def _job_tree(root, bundle, tmp_path):
    """A checkout with the artifacts downloaded where device-gate.yml's steps put them."""
    import shutil

    job = tmp_path / "job"
    shutil.copytree(REPO / "ci", job / "ci")
    shutil.copy(root / "base-params.yaml", job / "params.yaml")  # the base checkout's rules
    shutil.copytree(bundle, job / "release/bundle")
    (job / "ci-out/build").mkdir(parents=True)
    shutil.copy(root / "reports/release.json", job / "ci-out/build/release.json")
    (job / "ci-out/build/metrics-diff.md").write_text("| Path | Metric |\n")
    (job / "ci-out/build/pr.json").write_text(json.dumps({"number": 12, "head_sha": "a" * 40}))
    shutil.copytree(root / "ci-out/device-gate/cpu-ci", job / "ci-out/device/device-results-cpu-ci")
    for stale in ("gate.json", "gate.md"):
        (job / "ci-out/device/device-results-cpu-ci" / stale).unlink(missing_ok=True)
    return job


def _gate_sh(job, **env):
    import os
    import subprocess

    full = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "EDGEPROOF_GATE_SKIP_INSTALL": "1", **env}
    full["PYTHONPATH"] = str(REPO / "src")  # this checkout's edgeproof, not whichever the venv installed
    return subprocess.run(["bash", "ci/gate.sh", "cpu-ci"], cwd=job, env=full, capture_output=True, text=True)


def test_gate_sh_lays_out_the_one_folder_the_workflow_uploads(measured, tmp_path):
    root, bundle = measured
    job = _job_tree(root, bundle, tmp_path)
    proc = _gate_sh(job, JETSON_RESULT="success")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((job / "ci-out/device-gate/cpu-ci/gate.json").read_text())["verdict"] == "pass"
    assert "no baseline on main: regression not judged" in (job / "ci-out/device-gate/comment.md").read_text()


def _github_for_the_gate():
    """The fake GitHub of test_ci_artifacts, answering the gate's PR look-up, comment and statuses too."""
    from tests.unit.test_ci_artifacts import FakeGitHub

    github = FakeGitHub()
    posts = []
    handler = github.server.RequestHandlerClass

    def do_post(self):
        length = int(self.headers.get("Content-Length") or 0)
        posts.append((self.path, json.loads(self.rfile.read(length) or b"null")))
        self._send(201, b"{}")

    def do_get(self, _get=handler.do_GET):
        if "/pulls/12" in self.path:
            return self._send(200, json.dumps({"number": 12, "head": {"sha": "a" * 40}}).encode())
        if "/issues/12/comments" in self.path:
            return self._send(200, b"[]")
        return _get(self)

    handler.do_POST, handler.do_GET = do_post, do_get
    return github, posts


def _gate_sh_github(job, github, **env):
    from tests.unit.test_ci_artifacts import TOKEN

    given = {"JETSON_RESULT": "success", "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "o/r"}
    given.update(GITHUB_REPOSITORY_ID="7", GITHUB_API_URL=github.url, HEAD_SHA="a" * 40)
    try:
        return _gate_sh(job, **{**given, **env})
    finally:
        github.server.shutdown()


def test_gate_sh_with_github_finds_mains_baseline_comments_and_sets_the_status(measured, tmp_path):
    from tests.unit.test_ci_artifacts import zip_of

    root, bundle = measured
    job = _job_tree(root, bundle, tmp_path)
    github, posts = _github_for_the_gate()
    baseline = zip_of(
        {
            "cpu-ci/gate.json": json.dumps(
                {"verdict": "pass", "profile": "cpu-ci", "measured": {"fps_e2e": 100000.0, "map50_95": 1.0}}
            ).encode()
        }
    )
    github.add(900, 90, "device-gate-main", baseline, "2026-12-06T00:00:00Z")
    proc = _gate_sh_github(job, github)
    assert proc.returncode == 1, proc.stderr
    report = json.loads((job / "ci-out/device-gate/cpu-ci/gate.json").read_text())
    assert "regression_fps" in report["failed"]
    assert [p for p, _ in posts] == [f"/repos/o/r/statuses/{'a' * 40}", "/repos/o/r/issues/12/comments"]
    assert posts[0][1]["state"] == "failure" and "Head commit `aaaaaaaaaaaa`" in posts[1][1]["body"]


# --- no baseline from main: a pull request's own val set is never accepted; only main's push goes without ----


def _regression_and_val_set(job) -> dict:
    report = json.loads((job / "ci-out/device-gate/cpu-ci/gate.json").read_text())
    rules = {r["name"]: r for r in report["rules"] if r["name"].startswith(("regression", "same_val_set"))}
    return {"verdict": report["verdict"], **{name: r["status"] for name, r in rules.items()}}


@pytest.mark.parametrize(
    ("artifact", "why"),
    [
        (None, "no device-gate-main artifact on main (none yet, expired or deleted)"),
        ({"head_branch": "evil-pr"}, "device-gate-main artifacts found, none made by main's device-gate workflow"),
    ],
)
def test_a_pull_request_without_mains_baseline_is_inconclusive_not_judged_on_its_own_val_set(
    measured, tmp_path, artifact, why
):
    """Exit 4 (none) or 5 (none accepted) from the look-up: the pull request had passed with same_val_set and
    the regression rules dropped, its accuracy scored on images and ground truth its own build shipped."""
    from tests.unit.test_ci_artifacts import zip_of

    root, bundle = measured
    job = _job_tree(root, bundle, tmp_path)
    github, posts = _github_for_the_gate()
    if artifact is not None:  # a look-alike only: a pull request's upload of that name
        forged = zip_of({"cpu-ci/gate.json": b'{"verdict": "pass", "profile": "cpu-ci", "measured": {}}'})
        github.add(901, 91, "device-gate-main", forged, "2026-12-06T00:00:00Z", run=artifact)
    proc = _gate_sh_github(job, github)
    assert proc.returncode == 3, proc.stderr
    assert _regression_and_val_set(job) == {
        "verdict": "inconclusive",
        "same_val_set": "inconclusive",
        "regression_fps": "inconclusive",
        "regression_map": "inconclusive",
    }
    comment = (job / "ci-out/device-gate/comment.md").read_text()
    assert why in comment and "only a push to main without one" in comment and "PASSED" not in comment
    assert posts[0][1]["state"] == "error"  # the status: inconclusive, not success


def test_only_a_proven_push_to_main_is_judged_without_mains_baseline(measured, tmp_path):
    """MAIN_PUSH=true (ci/main_push.sh: its commit is on refs/heads/main): main makes its first baseline."""
    root, bundle = measured
    job = _job_tree(root, bundle, tmp_path)
    github, posts = _github_for_the_gate()
    proc = _gate_sh_github(job, github, MAIN_PUSH="true")
    assert proc.returncode == 0, proc.stderr
    assert _regression_and_val_set(job) == {"verdict": "pass"}
    assert "`cpu-ci`: no baseline on main: regression not judged" in (job / "ci-out/device-gate/comment.md").read_text()
    assert posts[0][1]["state"] == "success"


@pytest.mark.parametrize("main_push", [True, False], ids=["main-push", "pull-request"])
def test_mains_push_replaces_a_baseline_that_cannot_support_its_rules_a_pull_request_does_not(
    measured, tmp_path, main_push
):
    """Review diff10 F1: main's baseline in an older record (here: no fps_e2e, no map50_95) made main's own push
    inconclusive, so it never uploaded a new one. A proven push to main judges those rules as without a
    baseline (a note names the file and why); a pull request's stay inconclusive."""
    from tests.unit.test_ci_artifacts import zip_of

    root, bundle = measured
    job = _job_tree(root, bundle, tmp_path)
    github, posts = _github_for_the_gate()
    old = {"verdict": "pass", "profile": "cpu-ci", "measured": {"energy_mj_per_frame": None}}
    github.add(
        902, 92, "device-gate-main", zip_of({"cpu-ci/gate.json": json.dumps(old).encode()}), "2026-12-06T00:00:00Z"
    )
    proc = _gate_sh_github(job, github, **({"MAIN_PUSH": "true"} if main_push else {}))
    comment = (job / "ci-out/device-gate/comment.md").read_text()
    if not main_push:
        assert proc.returncode == 3, proc.stderr
        assert _regression_and_val_set(job) == {
            "verdict": "inconclusive",
            "regression_fps": "inconclusive",
            "regression_map": "inconclusive",
            "same_val_set": "inconclusive",  # nor has it a val_sha256: the PR's val set cannot be compared
        }
        assert "cannot judge" not in comment and posts[0][1]["state"] == "error"
        return
    assert proc.returncode == 0, proc.stderr
    assert _regression_and_val_set(job) == {"verdict": "pass"}
    for rule, why in (("regression_fps", "fps_e2e: None"), ("regression_map", "map50_95: None")):
        note = f"main's baseline ci-out/baseline/cpu-ci/gate.json cannot judge {rule} (main's baseline {why}"
        notes = json.loads((job / "ci-out/device-gate/cpu-ci/gate.json").read_text())["notes"]
        assert [n for n in notes if n.startswith(note)] and note in proc.stderr  # gate.json/.md and the job log
        assert note.replace("_", "\\_") in comment  # the comment, markdown-escaped
    assert posts[0][1]["state"] == "success"


def test_a_profile_mains_baseline_has_no_verdict_for_is_inconclusive_on_a_pull_request(measured, tmp_path):
    """A profile added by the pull request (or missing from main's artifact) has no baseline either."""
    root, bundle = measured
    other = root / "baseline-other" / "jetson-orin-nano"
    other.mkdir(parents=True, exist_ok=True)
    (other / "gate.json").write_text(json.dumps({"verdict": "pass", "profile": "jetson-orin-nano", "measured": {}}))
    code, report, body = _gate(root, bundle, "--baseline-root", str(root / "baseline-other"), "--require-baseline")
    assert code == 3 and report["verdict"] == "inconclusive", body
    rule = next(r for r in report["rules"] if r["name"] == "same_val_set")
    assert rule["status"] == "inconclusive"
    assert rule["reason"].startswith("main's device-gate-main artifact has no verdict for cpu-ci; a pull request")


def test_a_build_that_did_not_succeed_posts_inconclusive_statuses_and_reads_nothing(tmp_path):
    """device-gate.yml's build-failed job: no artifact exists to read; every profile gets status error, why."""
    import shutil

    job = tmp_path / "job"
    shutil.copytree(REPO / "ci", job / "ci")
    shutil.copy(REPO / "params.yaml", job / "params.yaml")
    github, posts = _github_for_the_gate()
    proc = _gate_sh_github(job, github, BUILD_RESULT="failure", JETSON_RESULT="")
    assert proc.returncode == 3, proc.stderr
    report = json.loads((job / "ci-out/device-gate/cpu-ci/gate.json").read_text())
    assert report["verdict"] == "inconclusive"
    assert report["reason"] == "the build workflow's run concluded 'failure': no bundle was made, nothing was measured"
    assert [p for p, _ in posts][:1] == [f"/repos/o/r/statuses/{'a' * 40}"] and posts[0][1]["state"] == "error"
    assert not [path for path, _ in github.seen if "/actions/" in path]  # no artifact, no baseline look-up
