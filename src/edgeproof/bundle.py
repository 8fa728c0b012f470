"""The build side of the Jetson hand-off: one folder with everything a device needs to judge a release.

``bundle`` params section (:class:`BundleParams`) sizes the val subset; the layout and its
verification live in :mod:`edgeproof.device.manifest` (the device side reads it without this module).

The bundle is a CI artifact: every file copied into it must come from where it is declared to, once
symlinks and ``..`` are resolved. The clip stays under ``data/sources/``, the models under the
repo, the val images under the prepared dataset's ``images/val``; anything else is refused.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field, field_validator

from edgeproof.data.caps import capped_keeping_share
from edgeproof.device.manifest import FORMAT, MANIFEST, file_entries
from edgeproof.folders import atomic_dir
from edgeproof.io import read_json, require_sha256, write_json
from edgeproof.profiles import Profile, parity_problem
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import read_input_size
from edgeproof.runtime.scoring import ScoringSettings
from edgeproof.schema import Section as _Section
from edgeproof.settings import SettingsError, as_dict

log = logging.getLogger(__name__)

_SALT = "bundle-val"  # the seeded order of the bundle's val cap, apart from the data stage's


class BundleParams(_Section):
    """What goes into the hand-off bundle besides the model."""

    # seeded val subset for on-device mAP, val's share of background images kept (null: all of val)
    max_val_images: int | None = Field(200, ge=1)
    seed: int = 0  # seeds the val subset
    # a recorded video (under data/sources/, a dep of the stage) that profiles with e2e_input: clip time
    clip: str | None = Field(None, pattern=r"^data/sources/[^\s]+$")

    @field_validator("clip")
    @classmethod
    def _stays_in_sources(cls, value: str | None) -> str | None:
        if value is not None and ".." in PurePosixPath(value).parts:
            raise ValueError(f"must stay under {CLIP_HOME}/ ('..' is not allowed), got {value!r}")
        return value


CLIP_HOME = "data/sources"  # bundle.clip's folder: a dep of the bundle stage


def confined(path: Path, base: Path, what: str) -> Path:
    """``path`` with symlinks and ``..`` resolved, which must lie inside ``base`` (resolved too).

    Raises ``ValueError`` naming ``what`` when it leads elsewhere: the bundle is an artifact, and
    ``data/sources/../../etc/passwd`` or a symlink out of the repo must not be copied into it.
    """
    real, home = path.resolve(), base.resolve()
    if not real.is_relative_to(home):
        raise ValueError(f"{what}: {path} leads outside {base} (to {real}); refused")
    return real


def _model_for(name: str, profile: Profile, release: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The variant, path and sha256 a profile runs: its own choice in release.json, or a fixed variant."""
    if profile.variant != "auto":
        return {**_built(release, profile.variant, where, f"profiles.{name}.variant"), "reason": "fixed in params"}
    entry = release.get("profiles", {}).get(name)
    if entry:
        out = {k: entry.get(k) for k in ("variant", "path", "sha256", "reason")}
        missing = [k for k in ("variant", "path", "sha256") if not out[k]]
        if missing:
            raise ValueError(f"{where}: profiles.{name} lacks {missing}")
        return out
    log.warning("%s has no choice for profile %s: it gets the build profile's release variant", where, name)
    why = f"no per-profile choice in {where}: the release variant of {release.get('build_profile')}"
    return {**_built(release, release.get("release_variant"), where, "release_variant"), "reason": why}


def _candidates(profile: Profile, release: Mapping[str, Any], released: str) -> tuple[list[Any], list[Any]]:
    """The variants ``profile.candidates`` names besides the released one, as built (path, sha256), and those
    left out with the reason (not built, or parity broken or not judged: the board would measure numbers
    nobody can release; :func:`~edgeproof.profiles.parity_problem`)."""
    ship, skipped = [], []
    for variant in profile.candidates:
        entry = release.get("variants", {}).get(variant) or {}
        if variant == released:
            continue
        if not entry.get("path") or not entry.get("sha256"):
            skipped.append({"variant": variant, "reason": "not built"})
        elif parity_problem(variant, entry):
            detail = entry.get("parity_reason") or entry.get("parity_matched_share") or "no parity record"
            skipped.append({"variant": variant, "reason": f"{parity_problem(variant, entry)} ({detail})"})
        else:
            profile.for_variant(variant)  # a setting the board would refuse: refused here
            ship.append({"variant": variant, "path": entry["path"], "sha256": entry["sha256"]})
    return ship, skipped


def _built(release: Mapping[str, Any], variant: Any, where: str, key: str) -> dict[str, Any]:
    """A built variant's path and sha256 from release.json, or an error naming what is missing."""
    entry = release.get("variants", {}).get(variant) if isinstance(variant, str) else None
    if not entry or not entry.get("path") or not entry.get("sha256"):
        raise ValueError(f"{where}: {key} is {variant!r} but release.json has no built variant with path and sha256")
    return {"variant": variant, "path": entry["path"], "sha256": entry["sha256"]}


def _val_subset(gt: Mapping[str, Any], params: BundleParams) -> dict[str, Any]:
    """Val's ground truth, capped at ``params.max_val_images`` the way the data stage caps val: the share of
    background images kept, a larger cap keeping a smaller cap's images (:mod:`edgeproof.data.caps`)."""
    images = sorted(gt["images"], key=lambda im: im["id"])
    if params.max_val_images is not None and len(images) > params.max_val_images:
        boxed = {a["image_id"] for a in gt["annotations"]}
        keys, labelled = [im["file_name"] for im in images], [im["id"] in boxed for im in images]
        images = [images[j] for j in capped_keeping_share(keys, labelled, params.max_val_images, params.seed, _SALT)]
    ids = {im["id"] for im in images}
    return {
        "images": images,
        "annotations": [a for a in gt["annotations"] if a["image_id"] in ids],
        "categories": gt["categories"],
    }


def _copy_models(tmp: Path, chosen: Mapping[str, dict[str, Any]], root: Path, release_path: Path) -> dict[str, str]:
    """Copy each distinct chosen model into ``tmp/models`` after checking its sha256; set each entry's ``model``.

    Returns the bundle path of each model by sha256.
    """
    models: dict[str, str] = {}
    for entry in (e for chosen_entry in chosen.values() for e in (chosen_entry, *chosen_entry["candidates"])):
        src = confined(root / entry["path"], root, f"{release_path}: model path")
        if entry["sha256"] not in models:
            require_sha256(src, entry["sha256"], str(release_path), "rerun `dvc repro` to rebuild the release")
            dest = f"models/{entry['variant']}.onnx"
            (tmp / "models").mkdir(exist_ok=True)
            shutil.copyfile(src, tmp / dest)
            models[entry["sha256"]] = dest
        entry["model"] = models[entry["sha256"]]
    return models


def _copy_build_reports(tmp: Path, release_path: Path, build_metrics: Mapping[str, Path]) -> None:
    """Copy release.json and the build-side metrics into ``tmp/build``."""
    (tmp / "build").mkdir()
    shutil.copyfile(release_path, tmp / "build" / "release.json")
    for name, path in build_metrics.items():
        shutil.copyfile(path, tmp / "build" / f"{name}.json")


def _copy_val(tmp: Path, data_dir: Path, gt: Mapping[str, Any]) -> None:
    """Copy the val subset's images and write its ground truth into ``tmp/val``."""
    (tmp / "val" / "images").mkdir(parents=True)
    images = data_dir / "images" / "val"
    for im in gt["images"]:
        src = confined(images / im["file_name"], images, f"{data_dir}/annotations/val.json: file_name")
        dest = confined(tmp / "val" / "images" / im["file_name"], tmp / "val" / "images", "val image name")
        shutil.copyfile(src, dest)
    write_json(tmp / "val" / "annotations.json", gt)


def _copy_clip(tmp: Path, params: BundleParams, root: Path) -> str | None:
    """Copy the recorded clip (if any) into ``tmp/clip``; its bundle path, or None."""
    if params.clip is None:
        return None
    src = confined(root / params.clip, root / CLIP_HOME, "params.yaml: bundle.clip")
    clip = f"clip/{Path(params.clip).name}"
    (tmp / "clip").mkdir()
    shutil.copyfile(src, tmp / clip)
    return clip


def _manifest(
    tmp: Path,
    release: Mapping[str, Any],
    chosen: Mapping[str, dict[str, Any]],
    gt: Mapping[str, Any],
    params: BundleParams,
) -> dict[str, Any]:
    """The manifest of the bundle folder ``tmp`` (every file written before it is listed)."""
    return {
        "format": FORMAT,
        "build_profile": release.get("build_profile"),
        "release_variant": release.get("release_variant"),
        "reference": release.get("reference"),
        "profiles": {n: _profile_entry(e) for n, e in chosen.items()},
        "val": {"images": len(gt["images"]), "seed": params.seed, "max_val_images": params.max_val_images},
        "files": file_entries(tmp),
    }


def _profile_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A profile's manifest entry: the released model, and the candidates the board measures after it."""
    out = {k: entry[k] for k in ("variant", "model", "sha256", "reason")}
    out["candidates"] = [{k: c[k] for k in ("variant", "model", "sha256")} for c in entry["candidates"]]
    out["candidates_skipped"] = list(entry["candidates_skipped"])
    return out


def _chosen(
    profiles: Mapping[str, Profile], release: Mapping[str, Any], release_path: Path
) -> dict[str, dict[str, Any]]:
    """Each profile's model (:func:`_model_for`) with the candidates the board measures after it; a profile
    that cannot run its variant is an error naming it here, before anything ships (the board would refuse it)."""
    chosen = {name: _model_for(name, p, release, str(release_path)) for name, p in profiles.items()}
    for name, p in profiles.items():
        try:
            p.for_variant(chosen[name]["variant"])
            chosen[name]["candidates"], chosen[name]["candidates_skipped"] = _candidates(
                p, release, chosen[name]["variant"]
            )
        except SettingsError as exc:
            raise ValueError(f"profiles.{name}: {exc}") from None
    return chosen


def build_bundle(
    out: Path,
    release_path: Path,
    build_metrics: Mapping[str, Path],
    data_dir: Path,
    deploy: DeploySettings,
    profiles: Mapping[str, Profile],
    scoring: ScoringSettings,
    params: BundleParams,
    root: Path = Path(),
) -> dict[str, Any]:
    """Write the bundle folder ``out`` atomically and return its manifest.

    ``build_metrics`` maps a bundle name (``eval``, ``bench``) to a build-side JSON file; model paths
    in ``release_path`` are relative to ``root``. A model whose bytes do not match the sha256 in
    ``release_path`` is an error (the release report is stale).
    """
    release = read_json(release_path)
    meta = read_json(data_dir / "meta.json")
    gt = _val_subset(read_json(data_dir / "annotations" / "val.json"), params)
    chosen = _chosen(profiles, release, release_path)
    with atomic_dir(out) as tmp:
        models = _copy_models(tmp, chosen, root, release_path)
        _copy_build_reports(tmp, release_path, build_metrics)
        _copy_val(tmp, data_dir, gt)
        clip = _copy_clip(tmp, params, root)
        first_model = tmp / next(iter(models.values()))
        write_json(
            tmp / "deploy.json",
            {
                "deploy": as_dict(deploy),
                "input_size": list(read_input_size(first_model)),
                "names": list(meta["names"]),
                "category_ids": list(meta["category_ids"]),
                "map": as_dict(scoring),
                "clip": clip,
            },
        )
        write_json(tmp / "profiles.json", {name: as_dict(p) for name, p in profiles.items()})
        manifest = _manifest(tmp, release, chosen, gt, params)
        write_json(tmp / MANIFEST, manifest)
    log.info("bundle %s: %d files, models %s", out, len(manifest["files"]), sorted(models.values()))
    return manifest
