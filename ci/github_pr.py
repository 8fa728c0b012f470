"""The pull request's side of the hosted gate job: GitHub's REST API for the comment and the statuses.

Split from ci/device_gate.py (which imports it; both run from ci/ as scripts): which PR to comment on
(never the build's unverified claim alone), one comment found again by a hidden marker, and one commit
status per profile.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("ci.device_gate")
MARKER = "<!-- edgeproof-device-gate -->"
STATES = {"pass": "success", "fail": "failure", "inconclusive": "error"}
Api = Callable[[str, str, Any], Any]


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


def event_payload() -> dict[str, Any]:
    """The workflow run's event (``GITHUB_EVENT_PATH``), or ``{}`` outside Actions."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else {}


def head_sha(event: dict[str, Any]) -> str | None:
    """The commit the PR's author pushed (never GitHub's merge commit): HEAD_SHA, else the event's head."""
    run = event.get("workflow_run") or {}
    pr = event.get("pull_request") or {}
    return os.environ.get("HEAD_SHA") or run.get("head_sha") or (pr.get("head") or {}).get("sha")


def resolve_pr(api: Api, repo: str, event: dict[str, Any], claimed: int | None, sha: str) -> int | None:
    """The PR to comment on. A fork's PR is missing from ``workflow_run.pull_requests``: the build's claim
    (``pr.json``, written by PR code, so untrusted) counts only if GitHub says that PR's head is ``sha``."""
    for pr in (event.get("workflow_run") or {}).get("pull_requests") or []:
        if (pr.get("head") or {}).get("sha") == sha:
            return int(pr["number"])
    if (event.get("pull_request") or {}).get("number"):
        return int(event["pull_request"]["number"])
    if claimed is None:
        return None
    pr = api("GET", f"/repos/{repo}/pulls/{int(claimed)}", None) or {}
    if (pr.get("head") or {}).get("sha") == sha:
        return int(claimed)
    log.warning("pr.json names PR #%s, whose head is not %s: no comment", claimed, sha)
    return None


def claimed_pr(path: Path | None) -> int | None:
    """The PR number the build's ``pr.json`` claims; None (logged) for a file that is not a JSON object."""
    if not path or not path.is_file():
        return None
    try:
        claim = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        log.error("%s is not JSON (%s): the PR it names is not used", path, exc)
        return None
    if not isinstance(claim, dict):
        log.error("%s is not a JSON object (%s): the PR it names is not used", path, type(claim).__name__)
        return None
    number = claim.get("number")
    return number if isinstance(number, int) and not isinstance(number, bool) else None
