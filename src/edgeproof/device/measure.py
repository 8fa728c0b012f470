"""``python -m edgeproof.device measure``: judge-ready measurements of a bundle's model on this machine.

Steps: verify the bundle against its manifest and check its contents are usable
(:mod:`edgeproof.device.usable`); read the machine (through the system root) and
refuse a profile it does not match; build the session on exactly the profile's providers (TensorRT:
an engine for exactly the profile's batch, ORT >= 1.16) and prove with ORT's profiler where the
nodes ran; time the engine build separately; then the gated figures first -- model-only latency,
end to end with energy and memory, the on-device detections for mAP -- while a sampler records
temperatures, clocks and over-current counters; and last the batch sweep, in its own session (and
its own engine cache folder, so it never rebuilds the gated engine).

Writes ``bench.json``, ``conditions.json``, ``eval.json`` + ``detections.json`` (on-device mAP) and
``measure.json`` (status, and ``bundle_manifest_sha256``: which bundle it measured) into the output
folder. A refusal writes ``measure.json`` (and ``conditions.json`` when the machine was read) with the
rule and reason, so the device gate can report why.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Tuple

from edgeproof.device import engine
from edgeproof.device.candidates import FOLDER as CANDIDATES
from edgeproof.device.candidates import context_for, measure_candidates
from edgeproof.device.ceiling import ceiling as ceiling_of
from edgeproof.device.conditions import throttle_reasons
from edgeproof.device.gated import (
    EXIT_BAD_INPUT,
    EXIT_CRASHED,
    EXIT_MACHINE,
    EXIT_OK,
    EXIT_PROVIDERS,
    Refused,
    gated_run,
    image_path,
)
from edgeproof.device.manifest import MANIFEST, BundleError, profile_model, verify_bundle
from edgeproof.device.memory import reset_peak
from edgeproof.device.placement import placed_session
from edgeproof.device.profile_source import load_profile
from edgeproof.device.providers import (
    TRT,
    cpu_fallback_guard,
    create_profiled_session,
    provider_list,
)
from edgeproof.device.results import device_name, recorded_settings, write_results
from edgeproof.device.sysinfo import SysRoot, machine_facts
from edgeproof.device.usable import usable_setup
from edgeproof.io import file_mb, sha256_file, write_json
from edgeproof.profiles import Profile, match_machine, mismatches
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import import_ort
from edgeproof.runtime.timing import batch_sweep
from edgeproof.settings import SettingsError

__all__ = ["EXIT_BAD_INPUT", "EXIT_CRASHED", "EXIT_MACHINE", "EXIT_OK", "EXIT_PROVIDERS", "Refused", "run_measure"]

log = logging.getLogger(__name__)


def _check_machine(profile: Profile, name: str, facts: Dict[str, Any]) -> Dict[str, Any]:
    match = match_machine(profile.match, facts)
    if not match["matched"]:
        bad = mismatches(match)
        raise Refused("machine_match", f"this machine does not match profile {name!r}: " + "; ".join(bad), EXIT_MACHINE)
    return match


def _read_bundle(
    bundle: Path, name: str, rules: Optional[Path]
) -> Tuple[Profile, Dict[str, Any], DeploySettings, Dict[str, Any]]:
    """Verify the bundle and check its contents are usable; the profile (the base's with ``rules``) as it
    runs the shipped variant (:meth:`Profile.for_variant`), deploy.json, its deploy settings and the
    profile's model entry."""
    manifest = verify_bundle(bundle)
    profile = load_profile(bundle, name, rules)
    entry = profile_model(bundle, manifest, name)
    setup = usable_setup(bundle)  # the pull request's build wrote it: unusable is its fault, never a crash
    deploy = DeploySettings.parse(setup["deploy"], where=f"{bundle / 'deploy.json'}: deploy")
    try:
        return profile.for_variant(entry["variant"]), setup, deploy, entry
    except SettingsError as exc:
        raise Refused("profile_settings", f"{bundle}: profiles.{name}: {exc}", EXIT_BAD_INPUT) from None


def _cache(
    cache_root: Path, profile: Profile, entry: Dict[str, Any], facts: Dict[str, Any], trt: Any, role: str
) -> Any:
    """The engine cache folder for ``role`` (created), whether it already held an engine, and its key info."""
    folder, info = engine.cache_folder(cache_root, profile, entry, facts, trt, role)
    hit = bool(folder and folder.is_dir() and any(folder.iterdir()))
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    return folder, hit, info


def _sweep(
    model_path: Path, profile: Profile, entry: Dict[str, Any], trt: Any, bundle: Path, context: Dict[str, Any]
) -> Tuple[Any, Optional[Path], Optional[Dict[str, Any]]]:
    """The batch sweep, after the gated figures, in its own session and engine cache folder (so it never
    rebuilds the gated engine): the sweep, that folder and its key info (``context``: :func:`context_for`'s)."""
    cache_dir, _hit, info = _cache(context["cache_root"], profile, entry, context["facts"], trt, "sweep")
    session, _ = create_profiled_session(model_path, profile, cache_dir, None, trt["sweep"] if trt else None)
    first = load_image(sorted((bundle / "val" / "images").iterdir())[0])
    detector = Detector(model_path, ort_session=session)
    return batch_sweep(detector, first, profile.batch_sweep, max(3, profile.runs // 5)), cache_dir, info


def _ceiling(model_path: Path, profile: Profile, trt: Any, ort_version: str, ort_ms: float, root: SysRoot) -> Any:
    """trtexec on the same file, precision and shape (informational: ORT latency / bare-engine latency)."""
    options = None
    if trt is not None:
        chosen = dict(provider_list(profile, None, trt["gated"], ort_version))
        options = chosen[TRT]
    return ceiling_of(model_path, options, trt["shape"] if trt else None, ort_ms, root.recorded)


class _GatedSession(NamedTuple):
    """The gated session and how it was built: its node placement, load time, engine cache and memory peak."""

    session: Any
    placed: Dict[str, Any]  # placed_session's proof of where the nodes ran, and the engine build time
    load_s: float
    cache_dir: Optional[Path]
    cache_hit: bool
    cache_info: Optional[Dict[str, Any]]
    peak: Dict[str, Any]  # reset_peak's record: what the peak memory figure covers


def _build_gated(
    model_path: Path, profile: Profile, entry: Dict[str, Any], size: Any, trt: Any, context: Dict[str, Any]
) -> _GatedSession:
    """The gated session on exactly the profile's providers (its engine in the ``gated`` cache folder), after
    the placement proof; the memory peak is reset between the two (``context``: :func:`context_for`'s)."""
    shapes = trt["gated"] if trt else None
    cache_dir, cache_hit, cache_info = _cache(context["cache_root"], profile, entry, context["facts"], trt, "gated")
    placed = placed_session(model_path, profile, cache_dir, size, shapes)
    # peak_memory_mb covers the gated session from here: not the bundle's ground truth parsed before, nor
    # an engine the placement session built on a cold cache (a warm one would not have)
    peak = reset_peak("the gated session was built")
    session, load_s = create_profiled_session(model_path, profile, cache_dir, None, shapes)
    return _GatedSession(session, placed, load_s, cache_dir, cache_hit, cache_info, peak)


def _engine_record(
    built: _GatedSession, sweep_dir: Optional[Path], sweep_info: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    """bench.json's ``engine``: the gated engine's build and load times and cache, and the sweep's cache."""
    return {
        "build_s": built.placed["engine_build_s"],
        "session_load_s": round(built.load_s, 4),
        "cache_dir": str(built.cache_dir) if built.cache_dir else None,
        "cache_hit": built.cache_hit,
        **(built.cache_info or {}),
        "sweep_cache_dir": str(sweep_dir) if sweep_dir else None,
        "sweep_key": (sweep_info or {}).get("key"),
    }


def _providers_record(profile: Profile, placed: Dict[str, Any], ort_version: str) -> Dict[str, Any]:
    """bench.json's ``providers``: those the profile requested, where the gated session's nodes ran
    (:func:`~edgeproof.device.placement.placed_session`), and how a silent CPU fallback is guarded against."""
    wanted = list(profile.provider_names)
    return {"requested": wanted, **placed, "cpu_fallback": cpu_fallback_guard(ort_version, wanted)}


def _matched_conditions(profile: Profile, name: str, facts: Dict[str, Any], root: SysRoot, out: Path) -> Dict[str, Any]:
    """``conditions.json`` with the machine as read, written before the match so a refusal leaves it; then the
    profile's match (a mismatch refuses, :func:`_check_machine`)."""
    conditions: Dict[str, Any] = {"profile": name, "machine": facts, "sysroot": str(root.root)}
    write_json(out / "conditions.json", conditions)
    conditions["match"] = _check_machine(profile, name, facts)
    return conditions


def measure(
    bundle: Path, name: str, out: Path, root: SysRoot, cache_root: Path, rules: Optional[Path] = None
) -> Dict[str, Any]:
    """Verify, match, build the session, measure the gated figures, then the sweep; write into ``out``.

    ``rules``: the base branch's params.yaml, whose profile sets what is measured and how
    (:mod:`edgeproof.device.profile_source`); None: the bundle's own ``profiles.json``.
    """
    from edgeproof.device.fingerprint import device_fingerprint

    profile, setup, deploy, entry = _read_bundle(bundle, name, rules)
    facts = machine_facts(root)
    conditions = _matched_conditions(profile, name, facts, root, out)
    size = tuple(setup["input_size"])
    model_path = Path(entry["path"])
    ort_version = str(import_ort().__version__)
    context = context_for(ort_version, root, cache_root, facts, name)
    trt = engine.plan(profile, model_path, size, ort_version, root)
    built = _build_gated(model_path, profile, entry, size, trt, context)
    model = Detector(model_path, Postprocess.deployed(deploy), ort_session=built.session)
    gated = gated_run(model, profile, bundle, deploy, setup, out, root, built.peak)
    sweep, sweep_dir, sweep_info = _sweep(model_path, profile, entry, trt, bundle, context)
    ceiling = _ceiling(model_path, profile, trt, ort_version, gated["model"]["mean"], root)
    # last: the candidates (never gated), each in its own session and engine cache folder
    candidates = measure_candidates(bundle, load_profile(bundle, name, rules), entry, setup, deploy, out, context)
    reasons = throttle_reasons(profile, facts, gated["during"])
    conditions.update(during=gated["during"], throttled=bool(reasons), reasons=reasons)
    fingerprint = device_fingerprint(list(built.session.get_providers()))
    run = {
        "profile": name,
        "variant": entry["variant"],
        "model_path": entry["model"],
        "model_sha256": entry["sha256"],
        "device_name": device_name(facts, fingerprint),
        "gated": gated,
        "batch_sweep": sweep,
        "input_size": size,
        "model_mb": file_mb(model_path),
        "engine_mb": engine.engines_mb([built.cache_dir]),
        "ceiling": ceiling,
        "candidates": candidates,
        "image_path": image_path(profile),
        "providers": _providers_record(profile, built.placed, ort_version),
        "engine": _engine_record(built, sweep_dir, sweep_info),
        "settings": recorded_settings(profile, setup),
        "fingerprint": fingerprint,
        "conditions": conditions,
    }
    write_results(out, run)
    return run


# What a measurement, its preflight (ci/jetson/run-device.sh) and its device gate leave in a results folder
RESULT_FILES = (
    "bench.json", "eval.json", "detections.json", "conditions.json", "measure.json", "gate.json", "gate.md",
    "preflight.json",
)  # fmt: skip


def clear_results(out: Path) -> None:
    """Create ``out`` and remove an older run's files from it (:data:`RESULT_FILES`, ``candidates/``): a rerun
    that is refused, interrupted or killed never leaves an older verdict, status or reading next to its own."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in RESULT_FILES:
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / CANDIDATES, ignore_errors=True)


def run_measure(
    bundle: Path, name: str, out: Path, sysroot: Optional[Path], cache_root: Path, rules: Optional[Path] = None
) -> int:
    """Run :func:`measure`, write ``measure.json`` with the status, and return the exit code."""
    clear_results(out)
    status: Dict[str, Any] = {
        "profile": name,
        "bundle": str(bundle),
        "bundle_manifest_sha256": manifest_digest(bundle),
    }
    try:
        run = measure(bundle, name, out, SysRoot(sysroot), cache_root, rules)
    except Refused as exc:
        status.update(status="refused", rule=exc.rule, reason=str(exc), exit_code=exc.code)
    except BundleError as exc:  # bundle_verified, or bundle_usable: the file and key named
        status.update(status="refused", rule=exc.rule, reason=str(exc), exit_code=EXIT_BAD_INPUT)
    except Exception as exc:  # an unforeseen crash still leaves a written, documented status
        log.exception("measurement crashed")
        reason = f"{type(exc).__name__}: {exc}"
        status.update(status="crashed", rule="measurement", reason=reason, exit_code=EXIT_CRASHED)
    else:
        status.update(
            status="measured",
            exit_code=EXIT_OK,
            throttled=run["conditions"]["throttled"],
            fps_e2e=run["gated"]["e2e"]["fps"],
        )
    write_json(out / "measure.json", status)
    if status["exit_code"]:
        log.error("refused (%s): %s", status["rule"], status["reason"])
    else:
        log.info("measured %s on %s: %.1f FPS end to end", name, bundle, status["fps_e2e"])
    return int(status["exit_code"])


def manifest_digest(bundle: Path) -> Optional[str]:
    """sha256 of the bundle's manifest.json (which hashes every other file): the gate checks it judges the
    bundle measured here (several same-name artifacts, a re-run). None when there is none to read."""
    try:
        return sha256_file(bundle / MANIFEST)
    except OSError:
        return None


def default_cache_root() -> Path:
    """Where TensorRT engines are cached: ``$EDGEPROOF_ENGINE_CACHE`` or ``~/.cache/edgeproof/engines``."""
    env = os.environ.get("EDGEPROOF_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgeproof" / "engines"
