"""The hosted gate job of .github/workflows/release-gate.yml, runnable (and tested) locally.

For each profile: run the device gate (``edgeproof device-gate``) on the Jetson job's results and
the bundle; then compose ONE pull-request comment (each profile's gate table + ``dvc metrics diff``
against main), and with ``--github`` create or update that comment (found by a hidden marker) and
set a commit status per profile; with ``--mlflow`` log each verdict to the MLflow run of the same
model; with ``--move-alias`` (main only) point the registry alias named after the profile at the
passing model's version. Exit: 1 if any profile failed, else 3 if any was inconclusive, else 0.

    python ci/device_gate.py --profile jetson-orin-nano --metrics-diff ci-out/metrics-diff.md \\
        --comment-out ci-out/comment.md            # local dry run: nothing leaves the machine
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("ci.device_gate")
MARKER = "<!-- edgeproof-device-gate -->"
STATES = {"pass": "success", "fail": "failure", "inconclusive": "error"}
Api = Callable[[str, str, Any], Any]


def overall_exit(verdicts: list[str]) -> int:
    """1 if any profile failed, else 3 if any was inconclusive, else 0."""
    if "fail" in verdicts:
        return 1
    return 3 if "inconclusive" in verdicts else 0


def compose_comment(reports: dict[str, str], metrics_diff: str | None, run_url: str | None, sha: str | None) -> str:
    """The PR comment: marker, each profile's gate.md, the metrics diff against main, the run link."""
    parts = [MARKER, "## edgeproof: release on the device", ""]
    if sha:
        parts.append(f"Commit `{sha[:12]}`" + (f" · [workflow run]({run_url})" if run_url else ""))
        parts.append("")
    for md in reports.values():
        parts += [md.replace("# Device gate:", "### Device gate:", 1).rstrip(), ""]
    parts += ["### `dvc metrics diff main`", ""]
    parts.append(metrics_diff.strip() if metrics_diff and metrics_diff.strip() else "_no metric changed_")
    return "\n".join(parts) + "\n"


def github_api(token: str, base: str = "https://api.github.com") -> Api:
    """A tiny GitHub REST client: ``api(method, path, payload) -> parsed JSON``."""

    def call(method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    return call


def upsert_comment(api: Api, repo: str, number: int, body: str) -> str:
    """Update the PR's edgeproof comment (found by :data:`MARKER`) or create it; returns "updated"/"created"."""
    for page in range(1, 11):
        comments = api("GET", f"/repos/{repo}/issues/{number}/comments?per_page=100&page={page}", None) or []
        for c in comments:
            if MARKER in (c.get("body") or "") and (c.get("user") or {}).get("type") == "Bot":
                api("PATCH", f"/repos/{repo}/issues/comments/{c['id']}", {"body": body})
                return "updated"
        if len(comments) < 100:
            break
    api("POST", f"/repos/{repo}/issues/{number}/comments", {"body": body})
    return "created"


def set_statuses(api: Api, repo: str, sha: str, verdicts: dict[str, str], url: str | None) -> None:
    """One commit status per profile: success (pass), failure (fail), error (inconclusive)."""
    for profile, verdict in verdicts.items():
        payload = {
            "state": STATES[verdict],
            "context": f"edgeproof/device-gate ({profile})",
            "description": f"device gate: {verdict}",
        }
        if url:
            payload["target_url"] = url
        api("POST", f"/repos/{repo}/statuses/{sha}", payload)


def _event() -> dict[str, Any]:
    path = os.environ.get("GITHUB_EVENT_PATH")
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else {}


def _gate_all(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, str]]:
    from edgeproof.verdict.device import run_device_gate

    release = args.release if args.release.exists() else None
    verdicts, reports, mds = {}, {}, {}
    for profile in args.profile:
        results = args.results_root / profile
        baseline = args.baseline_root / profile / "gate.json" if args.baseline_root else None
        run_device_gate(args.bundle, profile, results, release, baseline if baseline and baseline.exists() else None)
        reports[profile] = json.loads((results / "gate.json").read_text())
        mds[profile] = (results / "gate.md").read_text()
        verdicts[profile] = reports[profile]["verdict"]
    return verdicts, reports, mds


def _publish(args: argparse.Namespace, verdicts: dict[str, str], body: str) -> None:
    event = _event()
    repo = os.environ["GITHUB_REPOSITORY"]
    api = github_api(os.environ["GITHUB_TOKEN"], os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    pr = event.get("pull_request") or {}
    sha = (pr.get("head") or {}).get("sha") or os.environ.get("GITHUB_SHA", "")
    if pr.get("number"):
        log.info("PR comment %s", upsert_comment(api, repo, int(pr["number"]), body))
    set_statuses(api, repo, sha, verdicts, _run_url())


def _run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def main(argv: list[str] | None = None) -> int:
    """Gate every profile, write/publish the comment, track, and return the overall exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", nargs="+", required=True)
    p.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    p.add_argument("--results-root", type=Path, default=Path("reports/device"))
    p.add_argument("--release", type=Path, default=Path("reports/release.json"))
    p.add_argument("--baseline-root", type=Path, default=None, help="main's device gate results (regression rules)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="for the MLflow experiment/model name")
    p.add_argument("--metrics-diff", type=Path, default=None, help="`dvc metrics diff main --md` output")
    p.add_argument("--comment-out", type=Path, default=None, help="also write the comment here")
    p.add_argument("--github", action="store_true", help="update the PR comment and set commit statuses")
    p.add_argument("--mlflow", action="store_true", help="log each verdict to the MLflow run of the same model")
    p.add_argument("--move-alias", action="store_true", help="on a pass, point the profile's registry alias at it")
    args = p.parse_args(argv)
    verdicts, reports, mds = _gate_all(args)
    diff = args.metrics_diff.read_text() if args.metrics_diff and args.metrics_diff.exists() else None
    body = compose_comment(mds, diff, _run_url(), os.environ.get("GITHUB_SHA"))
    if args.comment_out:
        args.comment_out.parent.mkdir(parents=True, exist_ok=True)
        args.comment_out.write_text(body)
    if args.github:
        _publish(args, verdicts, body)
    if args.mlflow or args.move_alias:
        from edgeproof.config import load_params
        from edgeproof.tracking.device_verdict import log_device_verdicts

        track = load_params(args.params).track
        log_device_verdicts(reports, args.results_root, args.move_alias, track.experiment, track.model_name)
    log.info("device gate: %s", verdicts)
    return overall_exit(list(verdicts.values()))


if __name__ == "__main__":
    raise SystemExit(main())
