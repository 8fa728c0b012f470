"""GitHub Actions artifacts over the REST API, with nothing but the Python standard library.

The Jetson job runs no JavaScript action to *fetch* (docs/jetson.md): it gets the base branch's code
with ``git`` and the pull request's bundle with this script, run by the board's device Python
(3.8+). The hosted gate job uses it to find main's last device verdict (the regression baseline).

    python3 ci/artifacts.py download --run-id ID --name release-bundle --dest release/bundle
    python3 ci/artifacts.py latest --name device-gate-main --dest ci-out/baseline   # exit 4: none, 5: none accepted

``latest`` takes only an artifact that a ``workflow_run`` run of ``.github/workflows/device-gate.yml``
made for main of this repository (``GITHUB_REPOSITORY_ID``; the run's ``path`` with or without the
``@main`` GitHub's REST reference shows): any workflow can upload an artifact of that name, a pull
request's build included. Exit 5, not 4, when artifacts of that name exist but none qualifies (each
refusal is logged with why): a format GitHub changed or only look-alikes left is not "none yet".

Environment: ``GITHUB_TOKEN`` (``actions: read``), ``GITHUB_REPOSITORY``, ``GITHUB_API_URL``,
``GITHUB_REPOSITORY_ID`` (``latest``).
``GET .../artifacts/{id}/zip`` answers with a redirect to blob storage: it is followed WITHOUT the
token (the storage URL is pre-signed and must never receive the repository token). Archives are
extracted only when every member is a plain file that stays inside the destination, and only up to
``MAX_MEMBERS`` files and ``MAX_EXTRACTED`` bytes (declared, then counted as written).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

log = logging.getLogger("ci.artifacts")
MAX_ARCHIVE = 2 * 1024**3  # refuse absurd downloads (a bundle is tens of MB)
MAX_MEMBERS = 10_000  # a bundle has hundreds of files
MAX_EXTRACTED = 4 * 1024**3  # uncompressed bytes: the 8 GB board's disk, not a zip bomb's claim
MAX_PAGES = 20  # of 100 artifacts each when looking for main's baseline; past it the look-up fails
EXIT_NONE = 4
EXIT_NONE_ACCEPTED = 5  # artifacts of that name exist, but none the device-gate workflow made for main
BASELINE_WORKFLOW = ".github/workflows/device-gate.yml"  # the only workflow whose artifacts are main's verdicts


class ArtifactError(RuntimeError):
    """An artifact that cannot be found, fetched or safely extracted; the message says which and why."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # handled by Api.download: the token must not follow a redirect


class Api:
    """A minimal GitHub REST client for one repository."""

    def __init__(self, token: str, repo: str, base: str = "https://api.github.com") -> None:
        self.token, self.repo, self.base = token, repo, base.rstrip("/")
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _request(self, url: str, auth: bool) -> urllib.request.Request:
        req = urllib.request.Request(url)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        if auth:
            req.add_header("Authorization", "Bearer " + self.token)
        return req

    def get_json(self, path: str) -> Any:
        """``GET`` a repository path (``/actions/...``) and parse the JSON answer."""
        url = f"{self.base}/repos/{self.repo}{path}"
        try:
            with self._opener.open(self._request(url, True), timeout=60) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise ArtifactError(f"GET {url}: HTTP {exc.code} {exc.reason}") from None

    def download(self, url: str) -> bytes:
        """The bytes behind an ``archive_download_url``; a redirect is followed once, without the token."""
        try:
            with self._opener.open(self._request(url, True), timeout=60) as resp:
                return _read_capped(resp)
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.code in (301, 302, 303, 307, 308) else None
            if not location:
                raise ArtifactError(f"GET {url}: HTTP {exc.code} {exc.reason}") from None
        target = urllib.parse.urljoin(url, location)
        try:
            with urllib.request.urlopen(urllib.request.Request(target), timeout=300) as resp:
                return _read_capped(resp)
        except urllib.error.HTTPError as exc:
            raise ArtifactError("GET (redirected) {}: HTTP {}".format(target.split("?")[0], exc.code)) from None


def _read_capped(resp: Any) -> bytes:
    data = resp.read(MAX_ARCHIVE + 1)
    if len(data) > MAX_ARCHIVE:
        raise ArtifactError(f"artifact archive larger than {MAX_ARCHIVE} bytes: refused")
    return data


def _usable(artifacts: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [a for a in artifacts if a.get("name") == name and not a.get("expired")]


def run_artifact(api: Api, run_id: int, name: str) -> dict[str, Any]:
    """The artifact ``name`` of workflow run ``run_id`` (``GET /actions/runs/{id}/artifacts?name=``): the newest
    (highest id) when there are several, as ``actions/download-artifact`` picks, so the board measures the
    bundle the gate judges."""
    query = urllib.parse.urlencode({"name": name, "per_page": 100})
    found = _usable(api.get_json(f"/actions/runs/{run_id}/artifacts?{query}").get("artifacts") or [], name)
    if not found:
        raise ArtifactError(f"workflow run {run_id} has no (unexpired) artifact named {name!r}")
    if len(found) > 1:  # GitHub documents no order; download-artifact (the gate's side) takes the newest
        log.warning("run %s has %d artifacts named %r: the newest (highest id) is used", run_id, len(found), name)
    return max(found, key=lambda a: int(a.get("id") or 0))


def workflow_file(path: Any, branch: str) -> str | None:
    """A run's ``path`` without the ref GitHub may append (its REST reference shows
    ``.github/workflows/build.yml@main``): the file, when the ref is absent or ``branch`` (short or
    ``refs/heads/`` form); None for any other ref."""
    if not isinstance(path, str):
        return None
    file, _, ref = path.partition("@")
    return file if ref in ("", branch, "refs/heads/" + branch) else None


def _refused(api: Api, artifact: dict[str, Any], branch: str, repo_id: int | None) -> str | None:
    """Why the device-gate workflow (the default branch's code) did not upload it for ``branch`` of this
    repository (None: it did).

    The name alone proves nothing: a pull request's build runs the PR's code, which can upload an artifact
    of any name. The run that made it must be a ``workflow_run`` run of ``device-gate.yml``, whose upload
    step only runs for a push to main from this repository.
    """
    run = artifact.get("workflow_run") or {}
    if run.get("head_branch") != branch:
        return "head_branch {!r}".format(run.get("head_branch"))
    if repo_id is not None and run.get("head_repository_id") != repo_id:
        return "head_repository_id {!r}".format(run.get("head_repository_id"))
    details = api.get_json(f"/actions/runs/{int(run.get('id') or 0)}")
    if workflow_file(details.get("path"), branch) != BASELINE_WORKFLOW:
        return "path {!r}".format(details.get("path"))
    if details.get("event") != "workflow_run":
        return "event {!r}".format(details.get("event"))
    return None


def _all_named(api: Api, name: str) -> list[dict[str, Any]]:
    """Every unexpired artifact named ``name``, over all pages of ``GET /actions/artifacts?name=``.

    GitHub does not document the list's order, and anyone's workflow can add artifacts of any name: one
    page could be filled with a pull request's uploads. Past :data:`MAX_PAGES` the look-up fails (an
    error, exit 1), never "none found".
    """
    found: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        query = urllib.parse.urlencode({"name": name, "per_page": 100, "page": page})
        batch = api.get_json("/actions/artifacts?" + query).get("artifacts") or []
        found += _usable(batch, name)
        if len(batch) < 100:
            return found
    raise ArtifactError(f"more than {MAX_PAGES * 100} artifacts named {name!r}: main's baseline not looked up")


def latest_artifact(
    api: Api, name: str, branch: str = "main", repo_id: int | None = None
) -> tuple[dict[str, Any] | None, int]:
    """(the newest unexpired artifact named ``name`` that the device-gate workflow made for ``branch``, or None;
    how many of that name were refused on the way)."""
    found = _all_named(api, name)
    ignored: list[str] = []
    chosen = None
    for art in sorted(found, key=lambda a: (a.get("created_at") or "", a.get("id") or 0), reverse=True):
        why = _refused(api, art, branch, repo_id)
        if why is None:
            chosen = art
            break
        ignored.append(f"{art.get('id')} (run {(art.get('workflow_run') or {}).get('id')}: {why})")
    if ignored:  # one line: a flood of look-alikes must not flood the log too
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        newer = "newer " if chosen else ""
        log.warning("%d %sartifacts named %r not made by %s for %s, ignored: %s", len(ignored), newer, name,
                    BASELINE_WORKFLOW, branch, shown)  # fmt: skip
    return chosen, len(ignored)


def _check_members(members: list[zipfile.ZipInfo], root: Path, dest: Path) -> None:
    """Every member a plain file inside ``root``; their count and declared sizes under the caps."""
    if len(members) > MAX_MEMBERS:
        raise ArtifactError(f"archive has {len(members)} files (at most {MAX_MEMBERS}): refused")
    declared = sum(m.file_size for m in members)
    if declared > MAX_EXTRACTED:
        raise ArtifactError(f"archive would extract to {declared} bytes (at most {MAX_EXTRACTED}): refused")
    for member in members:
        kind = stat.S_IFMT(member.external_attr >> 16)  # 0: no Unix mode recorded (a plain file)
        target = (root / member.filename).resolve()
        if member.filename.startswith(("/", "\\")) or (root not in target.parents):
            raise ArtifactError(f"archive member {member.filename!r} leaves {dest}: refused")
        if kind not in (0, stat.S_IFREG):
            raise ArtifactError(f"archive member {member.filename!r} is not a plain file: refused")


def _copy_capped(src: Any, out: Any, budget: int, name: str) -> int:
    """Copy in chunks; the bytes actually written count against ``budget`` (a header can lie)."""
    written = 0
    while True:
        chunk = src.read(1024 * 1024)
        if not chunk:
            return written
        written += len(chunk)
        if written > budget:
            raise ArtifactError(f"archive member {name!r} extracts past {MAX_EXTRACTED} bytes in all: refused")
        out.write(chunk)


def safe_extract(data: bytes, dest: Path) -> list[str]:
    """Extract a zip into ``dest``: plain files only, every path inside ``dest``, at most :data:`MAX_MEMBERS`
    files and :data:`MAX_EXTRACTED` bytes (declared and written: a zip bomb is refused, not extracted
    into memory or onto the board's disk); returns the names."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        _check_members(members, root, dest)
        budget = MAX_EXTRACTED
        for member in members:
            target = root / member.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, target.open("wb") as out:
                budget -= _copy_capped(src, out, budget, member.filename)
    return sorted(m.filename for m in members)


def _api_from_env() -> Api:
    token, repo = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repo:
        raise ArtifactError("GITHUB_TOKEN and GITHUB_REPOSITORY must be set")
    return Api(token, repo, os.environ.get("GITHUB_API_URL", "https://api.github.com"))


def main(argv: list[str] | None = None) -> int:
    """``download`` (one run's artifact) or ``latest`` (the newest by name); exit 0, 1 error, 4 none found,
    5 found but none accepted."""
    logging.basicConfig(level=logging.INFO, format="ci/artifacts: %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="an artifact of one workflow run")
    d.add_argument("--run-id", type=int, required=True)
    latest = sub.add_parser(
        "latest", help="the newest artifact of that name the device-gate workflow made (exit 4: none, 5: none accepted)"
    )
    latest.add_argument("--branch", default="main", help="the branch whose pushes made it (default main)")
    for s in (d, latest):
        s.add_argument("--name", required=True)
        s.add_argument("--dest", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        api = _api_from_env()
        refused = 0
        if args.cmd == "download":
            art = run_artifact(api, args.run_id, args.name)
        else:
            repo_id = os.environ.get("GITHUB_REPOSITORY_ID")  # set by Actions: a fork's runs never match
            art, refused = latest_artifact(api, args.name, args.branch, int(repo_id) if repo_id else None)
        if art is None and refused:  # not "none": a format GitHub changed, or only look-alikes are left
            log.warning("%d artifacts named %r found, none accepted (see above)", refused, args.name)
            return EXIT_NONE_ACCEPTED
        if art is None:
            log.info("no artifact named %r", args.name)
            return EXIT_NONE
        names = safe_extract(api.download(art["archive_download_url"]), args.dest)
    except (ArtifactError, zipfile.BadZipFile, OSError) as exc:
        log.error("artifact %r: %s", args.name, exc)
        return 1
    run = (art.get("workflow_run") or {}).get("id")
    log.info("artifact %r (id %s, run %s): %d files -> %s", args.name, art.get("id"), run, len(names), args.dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
