"""Is a verified bundle usable? Its contents checked before anything is measured (Python 3.8-clean).

Verification (:func:`edgeproof.device.manifest.verify_bundle`) proves each file is the one the build
wrote; the pull request's build wrote them all, so a verified bundle can still be unusable: a
``deploy.json`` without ``input_size`` or with ``deploy.conf: "abc"``, a val image the annotations
list but the bundle lacks, a truncated JPEG. Found mid-run, each was a crash (exit 6, "fix the board,
rerun"), though no rerun on any board can help. Found here they are the bundle's fault:
:class:`~edgeproof.device.manifest.BundleUnusable` (exit 2, rule ``bundle_usable``), the file and key
named, and the device gate fails the pull request as for a bundle that fails verification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from edgeproof.device.manifest import BundleError, BundleUnusable, read_json_file
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.scoring import ScoringSettings
from edgeproof.settings import SettingsError

SHOWN = 10  # problems named in one refusal (the rest counted)


def _int_list(value: Any, length: Any = None) -> bool:
    ints = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return ints and bool(value) and (length is None or len(value) == length)


def _deploy_problems(where: Path, setup: Any) -> List[str]:
    """deploy.json: the keys the device side reads, with the types it needs."""
    if not isinstance(setup, dict):
        return [f"{where}: expected a JSON object, got {type(setup).__name__}"]
    missing = [k for k in ("input_size", "deploy", "map", "category_ids") if k not in setup]
    problems = [f"{where}: no {k!r}" for k in missing]
    size = setup.get("input_size")
    if "input_size" in setup and not (_int_list(size, 2) and min(size) > 0):
        problems.append(f"{where}: input_size: expected [height, width] (positive integers), got {size!r}")
    if "category_ids" in setup and not _int_list(setup["category_ids"]):
        problems.append(f"{where}: category_ids: expected a list of integers, got {setup['category_ids']!r}")
    for key, settings in (("deploy", DeploySettings), ("map", ScoringSettings)):
        try:
            if key in setup:
                settings.parse(setup[key], f"{where}: {key}")
        except SettingsError as exc:
            problems.append(str(exc))
    clip = setup.get("clip")
    if clip is not None and not (isinstance(clip, str) and _inside(where.parent, clip)):
        problems.append(f"{where}: clip: {clip!r} is not a file of the bundle")
    return problems


def _inside(bundle: Path, rel: str) -> bool:
    path = Path(rel)
    return not path.is_absolute() and ".." not in path.parts and (bundle / path).is_file()


def _image_problems(bundle: Path) -> List[str]:
    """val/: every image the annotations list is in val/images, and every file there decodes (the end-to-end
    run reads them all)."""
    folder, gt_path = bundle / "val" / "images", bundle / "val" / "annotations.json"
    try:
        gt = read_json_file(gt_path)
    except BundleError as exc:  # not valid JSON, a key given twice: named
        return [str(exc)]
    images = gt.get("images") if isinstance(gt, dict) else None
    if not isinstance(images, list) or not images:
        return [f"{gt_path}: images: expected a non-empty list"]
    problems = []
    present = sorted(p for p in folder.iterdir()) if folder.is_dir() else []
    names = {p.name for p in present}
    for i, im in enumerate(images):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or isinstance(im.get("id"), bool):
            problems.append(f"{gt_path}: images[{i}]: expected an object with an integer id, got {im!r}")
        elif im.get("file_name") not in names:  # a plain name of a file there, never a path
            problems.append(f"{gt_path}: images[{i}].file_name: {im.get('file_name')!r} is not a file of {folder}")
    for path in present:
        try:
            if not path.is_file():
                raise ValueError(f"{path}: not a file")
            load_image(path)
        except (OSError, ValueError) as exc:  # their messages name the file
            problems.append(str(exc))
    return problems


def usable_setup(bundle: Path) -> Dict[str, Any]:
    """The verified ``bundle``'s ``deploy.json``, once its contents are usable; raises
    :class:`~edgeproof.device.manifest.BundleUnusable` naming every file and key that is not."""
    bundle = Path(bundle)
    setup = read_json_file(bundle / "deploy.json")
    problems = _deploy_problems(bundle / "deploy.json", setup) + _image_problems(bundle)
    if problems:
        more = len(problems) - SHOWN
        shown = problems[:SHOWN] + ([f"... and {more} more"] if more > 0 else [])
        raise BundleUnusable("bundle unusable (rebuild it):\n  " + "\n  ".join(shown))
    return setup
