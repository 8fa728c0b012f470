"""``python -m edgeproof.device preflight``: is this board ready to gate a release?

First the bundle is verified (:func:`~edgeproof.device.manifest.verify_bundle`): nothing opens its
model before that, with ONNX Runtime least of all (a model whose tensor keeps its data at a path on the
board would have ORT read that file). A bundle that fails is the only check then (``bundle_verified``).
Then checks, each ``ok`` / ``fail`` with a reason: the machine matches the profile (Jetson model, L4T
release); the Python and device packages; the profile's execution providers are in this
onnxruntime build and a session on them really loads (the bundle's model, CUDA only so no TensorRT
engine is built here); the power mode; clocks at their maximum (after ``sudo jetson_clocks``) where
the profile requires it; the temperature well below the profile's limit; free disk for engine caches.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgeproof.device.conditions import clock_reasons, min_clock_ratios
from edgeproof.device.gated import EXIT_BAD_INPUT, EXIT_CRASHED, Refused
from edgeproof.device.manifest import BundleError, profile_model, verify_bundle
from edgeproof.device.profile_source import load_profile
from edgeproof.device.sysinfo import IGNORED_ZONES, SysRoot, machine_facts, power_mode_id
from edgeproof.profiles import Profile, match_machine

MIN_FREE_GIB = 2.0
TEMP_MARGIN_C = 10.0
BUNDLE_CHECK = "bundle_verified"  # the check, and the refusal's rule, as measure names it


def _check(name: str, ok: bool, detail: str) -> Dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _packages() -> Dict[str, Any]:
    missing = []
    for module in ("numpy", "PIL", "yaml", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    version = ".".join(str(v) for v in sys.version_info[:3])
    ok = not missing and sys.version_info >= (3, 8)
    return _check("python_packages", ok, f"Python {version}" + (f"; missing {missing}" if missing else ""))


def _providers(profile: Profile, model: str) -> List[Dict[str, Any]]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = list(profile.provider_names)
    missing = [p for p in wanted if p not in available]
    checks = [_check("providers_built_in", not missing, f"onnxruntime {ort.__version__}: {available}")]
    probe = [p for p in wanted if p != "TensorrtExecutionProvider"] or wanted
    if not missing:
        try:
            running = ort.InferenceSession(model, providers=probe).get_providers()
            checks.append(_check("providers_load", all(p in running for p in probe), f"{probe} -> {running}"))
        except Exception as exc:  # ORT raises bare Exceptions when a provider's libraries fail to load
            checks.append(_check("providers_load", False, f"{probe}: {type(exc).__name__}: {exc}"))
    return checks


def _board(profile: Profile, facts: Dict[str, Any]) -> List[Dict[str, Any]]:
    checks = []
    if profile.power_mode is not None:
        jetson = facts.get("jetson") or {}
        mode = (jetson.get("power_mode") or {}).get("mode")
        wanted, why = power_mode_id(jetson.get("model"), profile.power_mode)
        fix = f"; run `sudo nvpmodel -m {wanted}`" if wanted is not None else f"; {why}"
        detail = f"{mode!r} (profile: {profile.power_mode!r}" + (")" if mode == profile.power_mode else f"{fix})")
        checks.append(_check("power_mode", mode == profile.power_mode, detail))
    if profile.require_max_clocks:  # the run's own check, on the clocks now
        low = clock_reasons(profile, facts, min_clock_ratios([{"clocks": facts["clocks"]}]))
        detail = "; ".join(low) + " (run `sudo jetson_clocks`)" if low else "all at maximum"
        checks.append(_check("clocks_at_max", not low, detail))
    load, cpus = facts.get("load_avg_1m"), facts.get("cpus_online")
    if profile.max_load_per_cpu is not None and load is not None and cpus:
        ok = load / cpus <= profile.max_load_per_cpu
        checks.append(
            _check("idle", ok, f"load {load:g} on {cpus} CPUs (profile: <= {profile.max_load_per_cpu:g}/CPU)")
        )
    temps = {z: t for z, t in facts["thermal_c"].items() if z not in IGNORED_ZONES}
    hottest = max(temps.values()) if temps else None
    limit = profile.max_temp_c - TEMP_MARGIN_C
    checks.append(_check("temperature", hottest is None or hottest <= limit, f"hottest {hottest} C, limit {limit} C"))
    return checks


def preflight(bundle: Path, name: str, root: SysRoot, cache_root: Path, rules: Optional[Path] = None) -> Dict[str, Any]:
    """Every readiness check for profile ``name`` (the base's with ``rules``); ``{"ready": bool, "checks": [...]}``.

    The bundle is verified first; one that fails (or ships no model for ``name``) is the one check."""
    try:
        model = profile_model(bundle, verify_bundle(bundle), name)["path"]
    except BundleError as exc:
        return {"profile": name, "ready": False, "checks": [_check(BUNDLE_CHECK, False, str(exc))]}
    try:
        profile = load_profile(bundle, name, rules)
    except (Refused, BundleError) as exc:
        return {"profile": name, "ready": False, "checks": [_check("profile", False, str(exc))]}
    facts = machine_facts(root)
    match = match_machine(profile.match, facts)
    detail = "; ".join(f"{c['name']}={c['found']!r}" for c in match["checks"]) or "any machine"
    checks = [_check("machine_match", match["matched"], detail), _packages()]
    if checks[-1]["ok"]:
        checks += _providers(profile, model)
    checks += _board(profile, facts)
    cache_root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(str(cache_root)).free / 1024**3
    checks.append(_check("engine_cache_disk", free >= MIN_FREE_GIB, f"{free:.1f} GiB free at {cache_root}"))
    return {"profile": name, "ready": all(c["ok"] for c in checks), "checks": checks}


def refusal(report: Dict[str, Any]) -> Dict[str, Any]:
    """The ``measure.json`` a not-ready preflight leaves for the device gate: a bundle that failed verification
    is the bundle's refusal (rule ``bundle_verified``, exit 2, as ``measure`` gives), anything else the
    board's (rule ``preflight``, exit 6, the failed checks named)."""
    bad = [c for c in report["checks"] if not c["ok"]]
    status = {"status": "refused", "profile": report["profile"]}
    bundle = [c["detail"] for c in bad if c["name"] == BUNDLE_CHECK]
    if bundle:
        return {**status, "rule": BUNDLE_CHECK, "reason": bundle[0], "exit_code": EXIT_BAD_INPUT}
    reason = "board not ready: " + "; ".join(f"{c['name']} ({c['detail']})" for c in bad)
    return {**status, "rule": "preflight", "reason": reason, "exit_code": EXIT_CRASHED}
