"""What one device measurement writes: ``bench.json``, ``eval.json`` and ``conditions.json``.

The field names are the contract the device gate (:mod:`edgeproof.verdict.device`) and the PR report
read; :mod:`edgeproof.device.measure` assembles the run and hands it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from edgeproof.io import write_json
from edgeproof.profiles import Profile


def recorded_settings(profile: Profile, setup: Dict[str, Any]) -> Dict[str, Any]:
    """The measurement settings recorded in bench.json."""
    return {
        "batch": profile.batch,
        "warmup": profile.warmup,
        "runs": profile.runs,
        "e2e_images": profile.e2e_images,
        "e2e_input": profile.e2e_input,
        "providers": [[p.name, dict(p.options)] for p in profile.providers],  # TensorRT precision included
        "deploy": setup["deploy"],
    }


def write_results(out: Path, run: Dict[str, Any]) -> None:
    """Write bench.json, eval.json (if evaluated) and conditions.json from one measurement."""
    ident = {k: run[k] for k in ("profile", "variant", "model_path", "model_sha256")}
    g = run["gated"]
    mem = g["memory"]
    bench = {
        **ident,
        "device_name": run["device_name"],
        "fps_e2e": g["e2e"]["fps"],
        "fps_model": g["model"]["fps"],
        "latency_ms": {k: g["e2e"][k] for k in ("mean", "p50", "p90", "p95", "p99")},
        "latency_model_ms": {k: g["model"][k] for k in ("mean", "p50", "p90", "p95", "p99")},
        **g["energy"],
        **{k: mem[k] for k in ("peak_memory_mb", "memory_growth_mb", "memory_leak", "system_ram_delta_mb")},
        "memory": mem["memory"],
        "model_mb": run["model_mb"],
        "engine_mb": run["engine_mb"],
        **run["ceiling"],
        **run["image_path"],
        "e2e": g["e2e"],
        "e2e_overlapped": g["e2e_overlapped"],
        "e2e_parallel": g["e2e_parallel"],
        "candidates": run["candidates"],
        "model": g["model"],
        "batch_sweep": run["batch_sweep"],
        "input_size": list(run["input_size"]),
        "providers": run["providers"],
        "engine": run["engine"],
        "settings": run["settings"],
        "device": run["fingerprint"],
    }
    write_json(out / "bench.json", bench)
    if g["eval"] is not None:
        write_json(out / "eval.json", {**ident, **g["eval"], "providers_used": run["providers"]["session"]})
    write_json(out / "conditions.json", run["conditions"])


def device_name(facts: Dict[str, Any], fingerprint: Dict[str, Any]) -> str:
    """What the report's "Device:" line names: the Jetson model (device tree), else the CPU model."""
    return str((facts.get("jetson") or {}).get("model") or fingerprint.get("cpu_model") or facts.get("arch"))
