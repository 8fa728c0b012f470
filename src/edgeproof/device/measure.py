"""``python -m edgeproof.device measure``: judge-ready measurements of a bundle's model on this machine.

Steps: verify the bundle against its manifest; read the machine (through the system root) and
refuse a profile it does not match; build the session on exactly the profile's providers and prove
with ORT's profiler where the nodes ran; time the engine build separately; then model-only latency,
a batch sweep, end-to-end latency/FPS and (if the profile says so) the on-device detections for
mAP, while a sampler records temperatures, clocks and over-current counters.

Writes ``bench.json``, ``conditions.json``, ``eval.json`` + ``detections.json`` (on-device mAP) and
``measure.json`` (status) into the output folder. A refusal writes ``measure.json`` (and
``conditions.json`` when the machine was read) with the rule and reason, so the device gate can
report why.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from edgeproof.device.conditions import Sampler, throttle_reasons
from edgeproof.device.manifest import BundleError, profile_model, read_json_file, verify_bundle
from edgeproof.device.profiles import Profile, match_machine, parse_profiles
from edgeproof.device.providers import (
    TRT,
    create_profiled_session,
    engine_cache_key,
    node_placement,
    placement_problems,
    tensorrt_version,
)
from edgeproof.device.sysinfo import SysRoot, machine_facts
from edgeproof.device.timing import coco_detections, end_to_end_clip
from edgeproof.io import write_json
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import ProviderError, import_ort
from edgeproof.runtime.timing import batch_sweep, end_to_end, end_to_end_overlapped, model_only

log = logging.getLogger(__name__)

EXIT_OK, EXIT_BAD_INPUT, EXIT_MACHINE, EXIT_PROVIDERS = 0, 2, 4, 5
PLACEMENT_RUNS = 3


class Refused(RuntimeError):
    """The device side will not measure: ``rule`` names the check, ``code`` is the exit status."""

    def __init__(self, rule: str, reason: str, code: int) -> None:
        super().__init__(reason)
        self.rule, self.code = rule, code


def load_profile(bundle: Path, name: str) -> Profile:
    """The named profile from the bundle's ``profiles.json`` (the params the bundle was built with)."""
    profiles = parse_profiles(read_json_file(bundle / "profiles.json"), where=f"{bundle / 'profiles.json'}")
    if name not in profiles:
        raise BundleError(f"{bundle / 'profiles.json'}: no profile {name!r} (has {sorted(profiles)})")
    return profiles[name]


def _engine_cache(cache_root: Path, profile: Profile, model: Dict[str, Any], facts: Dict[str, Any], shape: Any) -> Any:
    """The TensorRT engine cache folder keyed by everything that invalidates an engine (None: no TRT)."""
    if TRT not in profile.provider_names:
        return None, None
    trt_opts = dict(profile.providers[profile.provider_names.index(TRT)].options)
    key_facts = {
        "model_sha256": model["sha256"],
        "onnxruntime": import_ort().__version__,
        "tensorrt": tensorrt_version(),
        "l4t": (facts.get("jetson") or {}).get("l4t"),
        "precision": "fp16" if trt_opts.get("trt_fp16_enable") else "fp32",
        "int8": bool(trt_opts.get("trt_int8_enable")),
        "variant": model["variant"],
        "input_shape": shape,
    }
    key = engine_cache_key(key_facts)
    return cache_root / key, {"key": key, "facts": key_facts}


def _placement(model_path: Path, profile: Profile, cache_dir: Optional[Path], input_size: Any) -> Dict[str, Any]:
    """Build the session once with profiling: engine build time, and which provider ran each node."""
    with tempfile.TemporaryDirectory(prefix="edgeproof-ort-profile-") as tmp:
        session, create_s = create_profiled_session(model_path, profile, cache_dir, Path(tmp) / "ort")
        model = Detector(model_path, ort_session=session)
        inputs, _ = model.preprocess([_gray(input_size)] * (model.fixed_batch or profile.batch))
        start = time.perf_counter()
        model.infer(inputs)
        first_s = time.perf_counter() - start
        for _ in range(PLACEMENT_RUNS - 1):
            model.infer(inputs)
        placement = node_placement(Path(session.end_profiling()))
    problems = placement_problems(list(profile.provider_names), placement)
    return {
        "session": list(session.get_providers()),
        "nodes": {p: len(n) for p, n in placement.items()},
        "nodes_off_first_provider": {p: n[:20] for p, n in placement.items() if p != profile.provider_names[0]},
        "problems": problems,
        "engine_build_s": round(create_s + first_s, 4),
        "session_create_s": round(create_s, 4),
        "first_run_s": round(first_s, 4),
    }


def _gray(size: Any) -> Any:
    import numpy as np

    return np.full((int(size[0]), int(size[1]), 3), 114, np.uint8)


def _check_machine(profile: Profile, name: str, facts: Dict[str, Any]) -> Dict[str, Any]:
    match = match_machine(profile.match, facts)
    if not match["matched"]:
        bad = [f"{c['name']}: expected {c['expected']!r}, found {c['found']!r}" for c in match["checks"] if not c["ok"]]
        raise Refused("machine_match", f"this machine does not match profile {name!r}: " + "; ".join(bad), EXIT_MACHINE)
    return match


def _timed(model: Detector, profile: Profile, bundle: Path, deploy: DeploySettings, images: Any) -> Dict[str, Any]:
    first = load_image(images[0])
    single = model_only(model, first, profile.batch, profile.warmup, profile.runs)
    sweep = batch_sweep(model, first, profile.batch_sweep, max(3, profile.runs // 5))
    if profile.e2e_input == "clip":
        clip = _bundle_clip(bundle)
        e2e = end_to_end_clip(model, clip, profile.e2e_images)
    else:
        e2e = end_to_end(model, images, 2, profile.e2e_images)
        e2e["source"] = "images"
        # throughput with decode + letterbox of frame n+1 overlapped with frame n (latency reported apart)
        overlapped = end_to_end_overlapped(model, images, 2, profile.e2e_images)
        return {"model": single, "batch_sweep": sweep, "e2e": e2e, "e2e_overlapped": overlapped}
    return {"model": single, "batch_sweep": sweep, "e2e": e2e}


def _bundle_clip(bundle: Path) -> Path:
    """The bundle's recorded clip, and OpenCV to read it; a refusal naming what is missing."""
    rel = read_json_file(bundle / "deploy.json").get("clip")
    if not rel:
        raise Refused("e2e_input", f"{bundle}: the profile measures a clip but the bundle has none (bundle.clip)", 2)
    try:
        from edgeproof.device.video import import_cv2

        import_cv2()
    except ImportError as exc:
        raise Refused("e2e_input", str(exc), EXIT_BAD_INPUT) from None
    return bundle / rel


def _evaluate(model: Detector, bundle: Path, setup: Dict[str, Any], out: Path) -> Dict[str, Any]:
    gt = read_json_file(bundle / "val" / "annotations.json")
    m = setup["map"]
    post = Postprocess(conf=m["conf"], iou=m["iou"], max_det=m["max_det"], multi_label=m["multi_label"])
    scorer = Detector(model.model_path, post, ort_session=model.session)
    results, ips = coco_detections(scorer, gt, bundle / "val" / "images", setup["category_ids"])
    write_json(out / "detections.json", results)
    # the device gate always scores the detections itself (pycocotools, against the verified ground
    # truth); where pycocotools is installed on the device, the figures are also here for the log
    return {
        "n_images": len(gt["images"]),
        "n_detections": len(results),
        "detections_file": "detections.json",
        "images_per_s": ips,
        "settings": dict(m),
        **_score_here(gt, results),
    }


def _score_here(gt: Dict[str, Any], results: Any) -> Dict[str, Any]:
    if sys.version_info < (3, 10):  # noqa: UP036 -- edgeproof.evaluation is build-side code (3.10+)
        return {"scored": False, "scored_by": "device gate (scoring here needs Python 3.10+)"}
    try:
        import pycocotools  # noqa: F401

        from edgeproof.evaluation.coco import score_coco
    except ImportError:
        return {"scored": False, "scored_by": "device gate (pycocotools is not installed here)"}
    metrics = score_coco(gt, results).metrics
    return {"scored": True, "map50_95": metrics["map50_95"], "map50": metrics["map50"]}


def _results(out: Path, run: Dict[str, Any]) -> None:
    """Write bench.json, eval.json (if evaluated) and conditions.json from one measurement."""
    ident = {k: run[k] for k in ("profile", "variant", "model_path", "model_sha256")}
    t = run["timed"]
    bench = {
        **ident,
        "fps_e2e": t["e2e"]["fps"],
        "fps_model": t["model"]["fps"],
        "latency_ms": {k: t["e2e"][k] for k in ("mean", "p50", "p90", "p95", "p99")},
        "latency_model_ms": {k: t["model"][k] for k in ("mean", "p50", "p90", "p95", "p99")},
        "e2e": t["e2e"],
        "model": t["model"],
        "batch_sweep": t["batch_sweep"],
        "e2e_overlapped": t.get("e2e_overlapped"),
        "input_size": list(run["input_size"]),
        "providers": run["providers"],
        "engine": run["engine"],
        "settings": run["settings"],
        "device": run["fingerprint"],
    }
    write_json(out / "bench.json", bench)
    if run.get("eval") is not None:
        write_json(out / "eval.json", {**ident, **run["eval"], "providers_used": run["providers"]["session"]})
    write_json(out / "conditions.json", run["conditions"])


def _read_bundle(bundle: Path, name: str) -> Tuple[Profile, Dict[str, Any], DeploySettings, Dict[str, Any]]:
    """Verify the bundle; the profile, deploy.json, its deploy settings and the profile's model entry."""
    manifest = verify_bundle(bundle)
    profile = load_profile(bundle, name)
    setup = read_json_file(bundle / "deploy.json")
    deploy = DeploySettings.parse(setup["deploy"], where=f"{bundle / 'deploy.json'}: deploy")
    return profile, setup, deploy, profile_model(bundle, manifest, name)


def _placed_session(model_path: Path, profile: Profile, cache_dir: Optional[Path], size: Any) -> Dict[str, Any]:
    """The profiled placement run; a refusal when the providers fail or a node ran off the profile's providers."""
    try:
        placed = _placement(model_path, profile, cache_dir, size)
    except ProviderError as exc:
        raise Refused("providers", str(exc), EXIT_PROVIDERS) from None
    if placed["problems"]:
        raise Refused("providers", "node placement: " + "; ".join(placed["problems"]), EXIT_PROVIDERS)
    return placed


def _sampled(
    model: Detector,
    profile: Profile,
    bundle: Path,
    deploy: DeploySettings,
    setup: Dict[str, Any],
    out: Path,
    root: SysRoot,
) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]], Dict[str, Any]]:
    """Time (and evaluate, if the profile says so) while the sampler records conditions; and what it recorded."""
    images = sorted((bundle / "val" / "images").iterdir())
    sampler = Sampler(root).start()
    try:
        timed = _timed(model, profile, bundle, deploy, images)
        evaluated = _evaluate(model, bundle, setup, out) if profile.evaluate_on_device else None
    finally:
        during = sampler.stop()
    return timed, evaluated, during


def _settings(profile: Profile, setup: Dict[str, Any]) -> Dict[str, Any]:
    """The measurement settings recorded in bench.json."""
    return {
        "batch": profile.batch,
        "warmup": profile.warmup,
        "runs": profile.runs,
        "e2e_images": profile.e2e_images,
        "e2e_input": profile.e2e_input,
        "deploy": setup["deploy"],
    }


def measure(bundle: Path, name: str, out: Path, root: SysRoot, cache_root: Path) -> Dict[str, Any]:
    """Verify, match, build the session, time, evaluate; write the results into ``out``."""
    from edgeproof.fingerprint import device_fingerprint

    profile, setup, deploy, model_entry = _read_bundle(bundle, name)
    facts = machine_facts(root)
    conditions: Dict[str, Any] = {"profile": name, "machine": facts, "sysroot": str(root.root)}
    write_json(out / "conditions.json", conditions)
    conditions["match"] = _check_machine(profile, name, facts)
    size = tuple(setup["input_size"])
    cache_dir, cache_info = _engine_cache(cache_root, profile, model_entry, facts, [profile.batch, 3, *size])
    cache_hit = bool(cache_dir and cache_dir.is_dir() and any(cache_dir.iterdir()))
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    model_path = Path(model_entry["path"])
    placed = _placed_session(model_path, profile, cache_dir, size)
    session, load_s = create_profiled_session(model_path, profile, cache_dir)
    timed, evaluated, during = _sampled(
        Detector(model_path, Postprocess.deployed(deploy), ort_session=session),
        profile,
        bundle,
        deploy,
        setup,
        out,
        root,
    )
    reasons = throttle_reasons(profile, facts, during)
    conditions.update(during=during, throttled=bool(reasons), reasons=reasons)
    run = {
        "profile": name,
        "variant": model_entry["variant"],
        "model_path": model_entry["model"],
        "model_sha256": model_entry["sha256"],
        "timed": timed,
        "eval": evaluated,
        "input_size": size,
        "providers": {"requested": list(profile.provider_names), **placed},
        "engine": {
            "build_s": placed["engine_build_s"],
            "session_load_s": round(load_s, 4),
            "cache_dir": str(cache_dir) if cache_dir else None,
            "cache_hit": cache_hit,
            **(cache_info or {}),
        },
        "settings": _settings(profile, setup),
        "fingerprint": device_fingerprint(list(session.get_providers())),
        "conditions": conditions,
    }
    _results(out, run)
    return run


def run_measure(bundle: Path, name: str, out: Path, sysroot: Optional[Path], cache_root: Path) -> int:
    """Run :func:`measure`, write ``measure.json`` with the status, and return the exit code."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("bench.json", "eval.json", "detections.json", "conditions.json", "measure.json"):
        (out / stale).unlink(missing_ok=True)
    status: Dict[str, Any] = {"profile": name, "bundle": str(bundle)}
    try:
        run = measure(bundle, name, out, SysRoot(sysroot), cache_root)
    except Refused as exc:
        status.update(status="refused", rule=exc.rule, reason=str(exc), exit_code=exc.code)
    except BundleError as exc:
        status.update(status="refused", rule="bundle_verified", reason=str(exc), exit_code=EXIT_BAD_INPUT)
    else:
        status.update(
            status="measured",
            exit_code=EXIT_OK,
            throttled=run["conditions"]["throttled"],
            fps_e2e=run["timed"]["e2e"]["fps"],
        )
    write_json(out / "measure.json", status)
    if status["exit_code"]:
        log.error("refused (%s): %s", status["rule"], status["reason"])
    else:
        log.info("measured %s on %s: %.1f FPS end to end", name, bundle, status["fps_e2e"])
    return int(status["exit_code"])


def default_cache_root() -> Path:
    """Where TensorRT engines are cached: ``$EDGEPROOF_ENGINE_CACHE`` or ``~/.cache/edgeproof/engines``."""
    env = os.environ.get("EDGEPROOF_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgeproof" / "engines"
