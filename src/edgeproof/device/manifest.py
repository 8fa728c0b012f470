"""The hand-off bundle's manifest, and its verification on the device.

A bundle is one folder the build side produces (``release/bundle/``) and the device consumes::

    manifest.json             format, the sha256 and size of every other file, the model of each profile
    models/<variant>.onnx     the release model(s): one file per variant any profile runs
    build/{release,eval,bench}.json   the build side's release choice and measurements
    deploy.json               deployment settings, input size, class names, category ids, mAP settings
    profiles.json             the ``profiles`` params section the bundle was built with
    val/annotations.json      COCO ground truth of the bundled val images
    val/images/<file>         the val images (all of val, or a seeded subset)

The device trusts nothing it cannot verify: every file must be listed with its sha256, no listed
file may be missing and no unlisted file may be present. ``manifest.json`` itself is anchored by
the device gate, which checks the model's sha256 against ``reports/release.json`` of the commit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

from edgeproof.io import read_json, sha256_file
from edgeproof.runtime.onnx_data import WireError, external_data_problem

MANIFEST = "manifest.json"
FORMAT = "edgeproof-bundle/1"
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # a variant: it names a results folder and an engine cache key


class BundleError(ValueError):
    """A bundle that cannot be trusted or used; the message names the file and the reason. ``rule``: the
    rule ``measure.json`` names (both are the pull request's fault at the device gate)."""

    rule = "bundle_verified"


class BundleUnusable(BundleError):
    """A verified bundle whose contents the device cannot use (:mod:`edgeproof.device.usable`)."""

    rule = "bundle_usable"


def file_entries(root: Path) -> Dict[str, Dict[str, Any]]:
    """``relative/posix/path -> {"sha256", "bytes"}`` for every file under ``root`` but the manifest."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST:
            out[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def read_json_file(path: Path) -> Any:
    """A JSON file of the bundle or of the results, with the file named in any error. A key given twice in
    one object is an error (a forged or corrupt file), not the last one winning."""
    try:
        return read_json(path)  # the one reader: its errors already name the file
    except (OSError, ValueError) as exc:
        raise BundleError(str(exc)) from None


def _problems(root: Path, listed: Dict[str, Any]) -> List[str]:
    problems = []
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    for rel in sorted(present - set(listed)):
        problems.append(f"{root / rel}: not listed in {MANIFEST} (unverifiable file)")
    for rel, entry in sorted(listed.items()):
        path = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{MANIFEST}: entry {rel!r} points outside the bundle")
        elif rel not in present:
            problems.append(f"{path}: listed in {MANIFEST} but missing")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{path}: size {path.stat().st_size} bytes, manifest says {entry.get('bytes')}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{path}: sha256 {sha256_file(path)} does not match the manifest's {entry.get('sha256')}")
    return problems


def _model_entry(where: str, entry: Any, listed: Dict[str, Any]) -> List[str]:
    """Problems of one model entry (a profile's released model or a candidate): a plain variant name (it
    names a results folder) and a model that is a listed file with exactly that sha256 (so inside the
    bundle, verified)."""
    if not isinstance(entry, dict):
        return [f"{where}: expected an object, got {type(entry).__name__}"]
    problems = []
    variant, model = entry.get("variant"), entry.get("model")
    if not isinstance(variant, str) or not PLAIN_NAME.match(variant):
        problems.append(f"{where}.variant: {variant!r} is not a plain name (letters, digits, _)")
    found = listed.get(model) if isinstance(model, str) else None
    if not isinstance(found, dict) or found.get("sha256") != entry.get("sha256"):
        problems.append(f"{where}: model {model!r} is not a listed file with that sha256")
    return problems


def _entry_problems(where: str, entry: Any, listed: Dict[str, Any]) -> List[str]:
    """Problems of a profile's manifest entry: its released model and every candidate the board would run."""
    problems = _model_entry(where, entry, listed)
    if not isinstance(entry, dict):
        return problems
    for key in ("candidates", "candidates_skipped"):
        items = entry.get(key) or []
        if not isinstance(items, list):
            problems.append(f"{where}.{key}: expected a list, got {type(items).__name__}")
            continue
        variants = [c.get("variant") for c in items if isinstance(c, dict)]
        for i, cand in enumerate(items):
            if key == "candidates":
                problems += _model_entry(f"{where}.{key}[{i}]", cand, listed)
            elif not isinstance(cand, dict) or not PLAIN_NAME.match(str(cand.get("variant"))):
                problems.append(f"{where}.{key}[{i}]: expected an object with a plain variant name, got {cand!r}")
        twice = sorted({str(v) for v in variants if variants.count(v) > 1})
        if twice:
            problems.append(f"{where}.{key}: lists a variant twice: {twice}")
    return problems


def _models(manifest: Dict[str, Any], listed: Dict[str, Any]) -> List[str]:
    """Every file the board may open as a model: the listed ``.onnx`` files and each one an entry names."""
    named = set()
    for entry in manifest["profiles"].values():
        for e in [entry, *(entry.get("candidates") or [])]:
            named.add(e["model"])
    return sorted({rel for rel in listed if rel.endswith(".onnx")} | named)


def verify_bundle(root: Path) -> Dict[str, Any]:
    """Check every file of the bundle at ``root`` against its manifest; return the manifest.

    Every model a profile entry names -- the released one and each candidate -- must be a listed file
    with that sha256, under a plain variant name. Raises :class:`BundleError` listing each changed,
    missing or unlisted file, and each entry that is not so, by name.
    """
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: bundle folder not found")
    manifest = read_json_file(root / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{root / MANIFEST}: not an {FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed or not all(isinstance(e, dict) for e in listed.values()):
        raise BundleError(f"{root / MANIFEST}: no 'files' listed (an object of objects)")
    profiles = manifest.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise BundleError(f"{root / MANIFEST}: profiles: expected an object, got {type(profiles).__name__}")
    problems = _problems(root, listed)
    for name, entry in profiles.items():
        problems += _entry_problems(f"{root / MANIFEST}: profiles.{name}", entry, listed)
    if not problems:
        problems = [p for rel in _models(manifest, listed) for p in _model_problems(root / rel)]
    if problems:
        raise BundleError("bundle verification failed:\n  " + "\n  ".join(problems))
    return manifest


def _model_problems(path: Path) -> List[str]:
    """A model whose tensors keep data in other files (not in the manifest; ORT may open any path) is refused."""
    try:
        problem = external_data_problem(path, path.read_bytes())
    except WireError as exc:
        return [f"{path}: not an ONNX protobuf ({exc})"]
    return [problem] if problem else []


def profile_model(root: Path, manifest: Dict[str, Any], profile: str) -> Dict[str, Any]:
    """The model entry ``{"variant", "model", "sha256", "path"}`` the bundle ships for ``profile``."""
    entry = (manifest.get("profiles") or {}).get(profile)
    if entry is None:
        known = sorted(manifest.get("profiles") or {})
        raise BundleError(f"{Path(root) / MANIFEST}: no model for profile {profile!r} (bundle has {known})")
    return {**entry, "path": str(Path(root) / entry["model"])}
