"""The hosted gate job of .github/workflows/device-gate.yml, runnable (and tested) locally.

It runs from the BASE branch's checkout (a ``workflow_run`` workflow: main's code and rules); the pull
request contributes data only: its bundle, its build's release record, its proposed params.yaml and
the Jetson job's results. For each profile: results that never arrived are *inconclusive* (the
comment says why, from the Jetson job's result, and what to do); otherwise ``edgeproof device-gate``
judges them with the base's params, the PR's params shown as proposed, the build's release record
(the sha chain) and main's last device verdict (regression; its absence is stated). Then ONE
pull-request comment naming the PR's head commit, with ``--github`` that comment (found by a hidden
marker) and a commit status per profile; with ``--mlflow`` (pushes to main only) the verdicts go to
MLflow and ``--move-alias`` moves the registry alias of a passing profile. Exit: 1 if any profile
failed, else 3 if any was inconclusive, else 0.

    python ci/device_gate.py --profile jetson-orin-nano --metrics-diff ci-out/metrics-diff.md \\
        --comment-out ci-out/comment.md            # local dry run: nothing leaves the machine
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from github_pr import MARKER, claimed_pr, event_payload, github_api, head_sha, resolve_pr, set_statuses, upsert_comment

from edgeproof.markdown import one_line, table_rows_only
from edgeproof.verdict.baseline import NO_BASELINE

log = logging.getLogger("ci.device_gate")
MAX_COMMENT = 60_000  # characters; GitHub refuses a comment body over 65,536 (HTTP 422)

# needs.jetson.result -> why no results arrived, and what to do about it
MISSING = {
    "skipped": (  # a build that did not succeed skips it too, but then this job is skipped: see BUILD_DID_NOT_RUN
        "the Jetson job was skipped: nothing was measured",
        "check why the job did not run (its `if:`, the workflow run's approval) and re-run it",
    ),
    "cancelled": (
        "the Jetson job was cancelled before its results came back (a newer push, a timeout, or a cancelled run)",
        "re-run the Jetson job; if it timed out, look at the board (engine build time, a hung measurement)",
    ),
    "failure": (
        "the Jetson job failed before its results were uploaded (runner offline or unregistered, deployment "
        "rejected, a step that cannot run on the board, or an infrastructure crash)",
        "read the Jetson job's log, fix the board or the runner (docs/jetson.md), and re-run the job",
    ),
    "success": (
        "the Jetson job succeeded but returned no results for this profile",
        "check the job's upload step and the profile name in the matrix",
    ),
}
UNKNOWN = ("no device results arrived for this profile", "run the Jetson job for this profile")
# the build workflow's conclusion, when not success (device-gate.yml's build-failed job): no bundle at all
BUILD_DID_NOT_RUN = (
    "the build workflow's run concluded {!r}: no bundle was made, nothing was measured",
    "fix the build (its run's log) and push again; a build cancelled by a newer push is replaced by that one's",
)


def overall_exit(verdicts: list[str]) -> int:
    """1 if any profile failed, else 3 if any was inconclusive, else 0."""
    if "fail" in verdicts:
        return 1
    return 3 if "inconclusive" in verdicts else 0


def baseline_file(root: Path | None, profile: str) -> Path | None:
    """main's last device verdict for ``profile``: ``ROOT/<profile>/gate.json``, the device-gate artifact's layout.

    The gate job uploads ONE folder (``ci-out/device-gate``), so upload-artifact roots the artifact at it
    and a download into ROOT gives exactly ``ROOT/<profile>/gate.json``.
    """
    path = root / profile / "gate.json" if root else None
    return path if path and path.is_file() else None


def baseline_missing(args: argparse.Namespace, profile: str) -> str | None:
    """Why ``profile``'s val set and regression rules are inconclusive without main's baseline; None when it is
    judged without one (a note says so): a push to main making main's first, or a local run.

    A pull request's val set (images and ground truth its own build ships) is accepted only as main's, so a
    pull request without main's baseline (none, none accepted, expired, a profile main has no verdict for)
    never passes on its own set: ``--require-baseline`` (ci/gate.sh, all but a proven push to main)."""
    if args.baseline_error:
        return f"main's baseline could not be fetched ({args.baseline_error})"
    if args.require_baseline:
        what = args.baseline_absent or f"main's device-gate-main artifact has no verdict for {profile}"
        return f"{what}; a pull request is judged against main's last passed verdict, only a push to main without one"
    return None


def missing_results(
    profile: str, jetson_result: str | None, build_result: str | None = None
) -> tuple[dict[str, Any], str]:
    """The inconclusive report (gate.json shape) and its markdown for results that never arrived."""
    why, todo = MISSING.get(jetson_result or "", UNKNOWN)
    if build_result not in (None, "success"):  # the build did not succeed: the Jetson job never ran
        why, todo = BUILD_DID_NOT_RUN[0].format(build_result), BUILD_DID_NOT_RUN[1]
    report = {
        "profile": profile,
        "verdict": "inconclusive",
        "passed": False,
        "failed": [],
        "rules": [],
        "reason": why,
        "action": todo,
        "jetson_job": jetson_result or None,
    }
    md = (
        f"# Device gate: `{profile}`\n\n**Verdict: INCONCLUSIVE ⚠️**: no device results.\n\n"
        f"Why: {why} (Jetson job: `{jetson_result or 'unknown'}`).  \nWhat to do: {todo}.\n"
    )
    return report, md


def gate_command(args: argparse.Namespace, profile: str, results: Path, baseline: Path | None) -> list[str]:
    """``edgeproof device-gate`` for one profile: judged with the base's params; the PR's shown as proposed."""
    cmd = [sys.executable, "-m", "edgeproof.cli", "device-gate", "--bundle", str(args.bundle)]
    cmd += ["--profile", profile, "--results", str(results)]
    if args.release is not None and args.release.exists():  # else the bundle's own build/release.json
        cmd += ["--release", str(args.release)]
    missing = None if baseline else baseline_missing(args, profile)
    if baseline:
        cmd += ["--baseline", str(baseline)]
        if not args.require_baseline and not args.baseline_error:  # main's push: it may replace the baseline
            cmd += ["--baseline-optional"]
    elif missing:  # regression rules and same_val_set inconclusive, never gone
        cmd += ["--baseline-unavailable", missing]
    cmd += ["--rules-params", str(args.params)]  # the base's rules judge; the PR's are only shown
    if args.proposed_params:
        cmd += ["--proposed-params", str(args.proposed_params)]
    return cmd


def judge(args: argparse.Namespace, profile: str) -> tuple[dict[str, Any], str]:
    """One profile's report and markdown: inconclusive without results, else the device gate's own."""
    results = args.results_root / profile
    if not (results / "measure.json").is_file():
        report, md = missing_results(profile, args.jetson_result, args.build_result)
    elif args.judged:
        return json.loads((results / "gate.json").read_text()), (results / "gate.md").read_text()
    else:
        (results / "gate.json").unlink(missing_ok=True)  # never report an older verdict
        cmd = gate_command(args, profile, results, baseline_file(args.baseline_root, profile))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(proc.stderr)
        if proc.returncode in (0, 1, 3) and (results / "gate.json").is_file():
            return json.loads((results / "gate.json").read_text()), (results / "gate.md").read_text()
        report, md = missing_results(profile, None)
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        report.update(reason=f"the device gate itself failed (exit {proc.returncode}): {tail}", action="fix the gate")
        md = f"# Device gate: `{profile}`\n\n**Verdict: INCONCLUSIVE ⚠️**: {report['reason']}\n"
    results.mkdir(parents=True, exist_ok=True)
    (results / "gate.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / "gate.md").write_text(md)
    return report, md


def compose_comment(
    reports: dict[str, str], metrics_diff: str | None, run_url: str | None, sha: str | None, notes: list[str] = ()
) -> str:
    """The PR comment: marker, head commit, each profile's gate.md, notes, the metrics diff, the run link."""
    parts = [MARKER, "## edgeproof: release on the device", ""]
    if sha:
        parts.append(f"Head commit `{sha[:12]}`" + (f" · [workflow run]({run_url})" if run_url else ""))
        parts.append("")
    for md in reports.values():
        parts += [md.replace("# Device gate:", "### Device gate:", 1).rstrip(), ""]
    parts += [f"- {one_line(n)}" for n in notes] + ([""] if notes else [])
    parts += ["### `dvc metrics diff main` (as the pull request's build reports it; not judged here)", ""]
    rows = table_rows_only(metrics_diff or "")  # the PR build's file: its table, nothing that could pose as ours
    parts.append(rows if rows else "_no metric changed_")
    return capped("\n".join(parts) + "\n")


def capped(body: str, limit: int = MAX_COMMENT) -> str:
    """``body`` cut at a line end to fit ``limit`` characters, saying how much was cut and where it all is."""
    if len(body) <= limit:
        return body
    cut = body.rfind("\n", 0, limit - 300) + 1 or limit - 300
    note = (
        f"\n\n_… {len(body) - cut} characters cut: GitHub takes at most 65,536 in a comment. Every report is "
        "in the workflow run's `device-gate` artifact._\n"
    )
    return body[:cut] + note


def _publish(args: argparse.Namespace, verdicts: dict[str, str], body: str) -> None:
    """Statuses first (they are the verdict), then the comment: a comment GitHub refuses is logged, never
    the reason a commit has no status."""
    event = event_payload()
    repo = os.environ["GITHUB_REPOSITORY"]
    api = github_api(os.environ["GITHUB_TOKEN"], os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    sha = head_sha(event) or os.environ.get("GITHUB_SHA", "")
    set_statuses(api, repo, sha, verdicts, _run_url())
    try:
        number = resolve_pr(api, repo, event, claimed_pr(args.pr_json), sha)
        if number:
            log.info("PR comment %s", upsert_comment(api, repo, number, body))
    except (OSError, ValueError) as exc:  # urllib's HTTPError/URLError are OSErrors; a bad answer a ValueError
        log.error("the PR comment could not be written (%s); the statuses are set", exc)


def _run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", nargs="+", required=True)
    p.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    p.add_argument("--results-root", type=Path, default=Path("reports/device"))
    p.add_argument("--release", type=Path, default=None, help="THIS build's release record (default: the bundle's)")
    p.add_argument("--baseline-root", type=Path, default=None, help="main's device-gate artifact: ROOT/<profile>/")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="the base branch's params (the rules)")
    p.add_argument("--proposed-params", type=Path, default=None, help="the PR's params.yaml, shown as proposed")
    p.add_argument("--jetson-result", default=None, help="needs.jetson.result: why results may be missing")
    p.add_argument("--build-result", default=None, help="workflow_run.conclusion, when the build did not succeed")
    p.add_argument("--pr-json", type=Path, default=None, help="the build's claim of its PR number (verified)")
    p.add_argument("--baseline-error", default=None, help="why main's baseline could not be fetched (ci/gate.sh)")
    p.add_argument("--baseline-absent", default=None, help="why the look-up found no baseline (none, none accepted)")
    p.add_argument(
        "--require-baseline", action="store_true", help="a pull request: no baseline makes its val set inconclusive"
    )
    p.add_argument("--judged", action="store_true", help="reuse the gate.json already in the results (track job)")
    p.add_argument("--metrics-diff", type=Path, default=None, help="`dvc metrics diff main --md` output")
    p.add_argument("--comment-out", type=Path, default=None, help="also write the comment here")
    p.add_argument("--github", action="store_true", help="update the PR comment and set commit statuses")
    p.add_argument("--mlflow", action="store_true", help="log each verdict to the MLflow run of the same model")
    p.add_argument("--move-alias", action="store_true", help="on a pass, point the profile's registry alias at it")
    return p


def main(argv: list[str] | None = None) -> int:
    """Gate every profile, write/publish the comment, track, and return the overall exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    args = _parser().parse_args(argv)
    reports, mds, notes = {}, {}, []
    for profile in args.profile:
        reports[profile], mds[profile] = judge(args, profile)
        if baseline_file(args.baseline_root, profile) or not reports[profile].get("rules"):
            continue
        # judged so by `edgeproof device-gate --baseline-unavailable` (gate_command), or main's first
        notes.append(f"`{profile}`: {baseline_missing(args, profile) or NO_BASELINE}")
    verdicts = {p: r["verdict"] for p, r in reports.items()}
    diff = None
    if args.metrics_diff and args.metrics_diff.is_file():  # the PR build's file: any bytes at all
        diff = args.metrics_diff.read_text(encoding="utf-8", errors="replace")
    body = compose_comment(mds, diff, _run_url(), head_sha(event_payload()) or os.environ.get("GITHUB_SHA"), notes)
    if args.comment_out:
        args.comment_out.parent.mkdir(parents=True, exist_ok=True)
        args.comment_out.write_text(body)
    if args.github:
        _publish(args, verdicts, body)
    if args.mlflow or args.move_alias:
        from edgeproof.config import load_params
        from edgeproof.tracking.device_verdict import log_device_verdicts

        track = load_params(args.params).track
        measured = {p: r for p, r in reports.items() if r.get("rules")}  # nothing to log for missing results
        aliases = (track.champion_alias, track.candidate_alias)
        log_device_verdicts(
            measured, args.results_root, args.move_alias, track.experiment, track.model_name, track_aliases=aliases
        )
    log.info("device gate: %s", verdicts)
    return overall_exit(list(verdicts.values()))


if __name__ == "__main__":
    raise SystemExit(main())
