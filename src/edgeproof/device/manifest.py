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

from pathlib import Path
from typing import Any, Dict, List

from edgeproof.io import read_json, sha256_file
from edgeproof.runtime.onnx_data import WireError, external_data_problem

MANIFEST = "manifest.json"
FORMAT = "edgeproof-bundle/1"


class BundleError(ValueError):
    """A bundle that cannot be trusted or used; the message names the file and the reason."""


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


def verify_bundle(root: Path) -> Dict[str, Any]:
    """Check every file of the bundle at ``root`` against its manifest; return the manifest.

    Raises :class:`BundleError` listing each changed, missing or unlisted file by name.
    """
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: bundle folder not found")
    manifest = read_json_file(root / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{root / MANIFEST}: not an {FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed:
        raise BundleError(f"{root / MANIFEST}: no 'files' listed")
    problems = _problems(root, listed)
    for name, entry in (manifest.get("profiles") or {}).items():
        model = listed.get(entry.get("model", ""))
        if model is None or model.get("sha256") != entry.get("sha256"):
            problems.append(
                f"{root / MANIFEST}: profile {name!r} model {entry.get('model')!r} is not a listed file "
                "with that sha256"
            )
    if not problems:
        problems = [p for rel in sorted(listed) if rel.endswith(".onnx") for p in _model_problems(root / rel)]
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
