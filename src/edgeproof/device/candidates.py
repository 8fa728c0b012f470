"""Candidate variants: measured on the board after the released one, never gated.

A profile's ``candidates`` (an Orin's ``int8_trt``) ship in the bundle next to its released model, so
the release choice can rest on board figures rather than on the build machine's CPU. After every
gated figure and the sweep, each candidate is measured as it would run: its own session on exactly
the profile's providers (:meth:`~edgeproof.profiles.Profile.for_variant`: TensorRT in INT8 mode for
``int8_trt``), its own engine cache folder, the node placement proved like the released file's (a node off the
profile's providers fails the candidate), model-only and end-to-end latency, and its detections on
the bundle's val images, into ``candidates/<variant>/`` (``bench.json`` with the same identity,
``input_size``, ``providers`` and ``settings`` as the released one's, ``eval.json``,
``detections.json``). A failure is recorded with its reason; it never changes the measurement's
status or exit code. The device gate scores the detections and says whether the candidate would pass
the profile's rules (:mod:`edgeproof.verdict.candidates`).

No energy, power or memory figure is measured for a candidate: its ``bench.json`` says so
(``energy``/``memory`` records ``measurable: false`` with :data:`NO_ENERGY`/:data:`NO_MEMORY`), so a
profile's budgets on them leave the candidate inconclusive, never "would pass".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from edgeproof.device import engine
from edgeproof.device.gated import e2e_run, evaluate
from edgeproof.device.placement import placed_session
from edgeproof.device.providers import create_profiled_session
from edgeproof.device.results import recorded_settings
from edgeproof.device.sysinfo import SysRoot
from edgeproof.io import write_json
from edgeproof.profiles import Profile
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.timing import model_only

FOLDER = "candidates"
NO_ENERGY = (
    "not measured for a candidate: the board measures energy and power over the released file's timed frames only"
)
# in this process the released model's session is still loaded: a peak here would be both models', not the candidate's
NO_MEMORY = "not measured for a candidate: its process also holds the released model, so its peak would not be its own"


def _measure_one(
    bundle: Path,
    profile: Profile,
    cand: Dict[str, Any],
    setup: Dict[str, Any],
    deploy: DeploySettings,
    out: Path,
    context: Dict[str, Any],
) -> Dict[str, Any]:
    """One candidate's figures, written into ``out``; raises on any failure (the caller records it)."""
    model_path = bundle / cand["model"]
    runs = profile.for_variant(cand["variant"])
    size = tuple(setup["input_size"])
    trt = engine.plan(runs, model_path, size, context["ort_version"], context["root"])
    cache_dir, _info = engine.cache_folder(context["cache_root"], runs, cand, context["facts"], trt, "gated")
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    shapes = trt["gated"] if trt else None
    placed = placed_session(model_path, runs, cache_dir, size, shapes)  # the same proof as the released file's
    session, load_s = create_profiled_session(model_path, runs, cache_dir, None, shapes)
    model = Detector(model_path, Postprocess.deployed(deploy), ort_session=session)
    images = sorted((bundle / "val" / "images").iterdir())
    single = model_only(model, load_image(images[0]), runs.batch, runs.warmup, runs.runs)
    e2e = e2e_run(model, runs, bundle, deploy, images)
    out.mkdir(parents=True, exist_ok=True)
    ident = {
        "profile": context["profile"],
        "variant": cand["variant"],
        "model_path": cand["model"],
        "model_sha256": cand["sha256"],
    }
    bench = {
        **ident,
        "fps_e2e": e2e["fps"],
        "latency_ms": {k: e2e[k] for k in ("mean", "p50", "p90", "p95", "p99")},
        "latency_model_ms": {k: single[k] for k in ("mean", "p50", "p90", "p95", "p99")},
        "e2e": e2e,
        "model": single,
        "input_size": list(size),
        "providers": {"requested": list(runs.provider_names), **placed},
        "settings": recorded_settings(runs, setup),
        "session_load_s": round(load_s, 4),
        "engine_cache_dir": str(cache_dir) if cache_dir else None,
        "energy": {"measurable": False, "reason": NO_ENERGY},
        "memory": {"measurable": False, "reason": NO_MEMORY},
    }
    write_json(out / "bench.json", bench)
    if profile.evaluate_on_device:
        write_json(out / "eval.json", {**ident, **evaluate(model, bundle, setup, out)})
    return {**ident, "fps_e2e": e2e["fps"], "latency_ms_p95": e2e["p95"], "latency_model_ms_p50": single["p50"]}


def measure_candidates(
    bundle: Path,
    profile: Profile,
    entry: Dict[str, Any],
    setup: Dict[str, Any],
    deploy: DeploySettings,
    out: Path,
    context: Dict[str, Any],
) -> List[Dict[str, Any]]:
    """Measure each candidate of the profile's bundle ``entry`` into ``out/candidates/<variant>``; a summary
    per candidate (``status``: measured | failed, with the reason), plus those the bundle left out.
    Only the variants ``profile.candidates`` names (the base's profile, with ``--rules-params``) are
    measured: the bundle, the pull request's, cannot add engine builds to the board's time (others are
    ``not measured``). ``entry`` is verified (:func:`~edgeproof.device.manifest.verify_bundle`: each
    candidate a listed file with its sha256, a plain variant name).
    ``context``: ``ort_version``, ``root`` (:class:`SysRoot`), ``cache_root`` and the machine ``facts``."""
    summary: List[Dict[str, Any]] = []
    for cand in entry.get("candidates") or []:
        if cand["variant"] not in profile.candidates:
            why = f"not a candidate of the profile that measures (candidates: {list(profile.candidates)})"
            summary.append(
                {"variant": cand["variant"], "model_sha256": cand["sha256"], "status": "not measured", "reason": why}
            )
            continue
        try:
            got = _measure_one(bundle, profile, cand, setup, deploy, out / FOLDER / cand["variant"], context)
            summary.append({**got, "status": "measured", "reason": None})
        except Exception as exc:  # a candidate is evidence, never the verdict: its failure is recorded
            why = f"{type(exc).__name__}: {exc}"
            summary.append(
                {"variant": cand.get("variant"), "model_sha256": cand.get("sha256"), "status": "failed", "reason": why}
            )
    for skipped in entry.get("candidates_skipped") or []:
        summary.append({**skipped, "status": "not shipped"})
    return summary


def context_for(
    ort_version: str, root: SysRoot, cache_root: Path, facts: Dict[str, Any], profile: str
) -> Dict[str, Any]:
    """The measurement context :func:`measure_candidates` needs (``profile``: the profile's name)."""
    return {"ort_version": ort_version, "root": root, "cache_root": cache_root, "facts": facts, "profile": profile}
