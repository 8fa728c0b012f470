"""Sessions on exactly a profile's execution providers, and proof of where each node ran.

ONNX Runtime falls back silently twice: at session creation (a failing TensorRT/CUDA provider is
dropped with an "EP Error ... Falling back" retry) and per node (nodes a provider does not support
go to the next one, finally the CPU). Both are detected here: the session's providers must be the
requested ones, and ORT's profiler, run over a few inferences, must show every node on a requested
provider with the first (preferred) one running at least one. Where the CPU was not asked for,
``session.disable_cpu_ep_fallback`` makes ORT refuse CPU placement outright.

TensorRT engines are cached in a folder keyed by everything that invalidates them (model sha256,
ORT and TensorRT versions, L4T release, precision, input shape), so a stale engine is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.profiles import Profile
from edgeproof.runtime.session import ProviderError, graph_level, import_ort, require_available

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
TRT = "TensorrtExecutionProvider"


def tensorrt_version() -> Optional[str]:
    """The TensorRT Python package's version, if installed (JetPack ships it)."""
    try:
        import tensorrt  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(getattr(tensorrt, "__version__", None))


def engine_cache_key(facts: Dict[str, Any]) -> str:
    """A short key over every fact an engine depends on (model sha256, versions, L4T, precision, shape)."""
    blob = json.dumps(facts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def provider_list(profile: Profile, cache_dir: Optional[Path]) -> List[Tuple[str, Dict[str, Any]]]:
    """``(name, options)`` per provider; a TensorRT engine/timing cache is pointed at ``cache_dir``."""
    out = []
    for p in profile.providers:
        options = dict(p.options)
        if p.name == TRT and cache_dir is not None:
            if options.get("trt_engine_cache_enable"):
                options.setdefault("trt_engine_cache_path", str(cache_dir))
            if options.get("trt_timing_cache_enable"):
                options.setdefault("trt_timing_cache_path", str(cache_dir))
        out.append((p.name, options))
    return out


def create_profiled_session(
    model: Path, profile: Profile, cache_dir: Optional[Path], profiling_prefix: Optional[Path] = None
) -> Tuple[Any, float]:
    """A session on exactly ``profile``'s providers and its creation time in seconds.

    Raises :class:`ProviderError` when a provider is not in this onnxruntime build or when the
    session does not run on all of them (the creation-time fallback).
    """
    ort = import_ort()
    wanted = list(profile.provider_names)
    require_available(ort, wanted)
    options = ort.SessionOptions()
    options.graph_optimization_level = graph_level("all")
    options.log_severity_level = 3
    if CPU not in wanted:
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    if profiling_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profiling_prefix)
    names = [n for n, _ in provider_list(profile, cache_dir)]
    opts = [o for _, o in provider_list(profile, cache_dir)]
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(str(model), sess_options=options, providers=names, provider_options=opts)
    except Exception as exc:  # ORT's own errors are bare Exceptions
        raise ProviderError(f"{model}: no session on {wanted} ({type(exc).__name__}: {exc})") from None
    seconds = time.perf_counter() - start
    running = list(session.get_providers())
    dropped = [p for p in wanted if p not in running]
    if dropped:
        raise ProviderError(f"provider(s) {dropped} were requested but the session runs on {running} (ORT fell back)")
    return session, seconds


def node_placement(profile_file: Path) -> Dict[str, List[str]]:
    """Provider -> node names, from an ORT profiling JSON (one ``*_kernel_time`` event per node run)."""
    events = json.loads(Path(profile_file).read_text())
    out: Dict[str, List[str]] = {}
    for ev in events:
        args = ev.get("args") or {}
        name = str(ev.get("name", ""))
        if ev.get("cat") == "Node" and "provider" in args and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            nodes = out.setdefault(str(args["provider"]), [])
            if node not in nodes:
                nodes.append(node)
    return out


def placement_problems(wanted: List[str], placement: Dict[str, List[str]]) -> List[str]:
    """Why the node placement does not prove the profile's providers ran (empty: it does)."""
    problems = []
    if not placement:
        return ["the profiler recorded no node runs: placement unproven"]
    for provider, nodes in sorted(placement.items()):
        if provider not in wanted:
            problems.append(f"{len(nodes)} node(s) ran on {provider}, not a profile provider (e.g. {nodes[:3]})")
    if not placement.get(wanted[0]):
        problems.append(f"no node ran on {wanted[0]}, the profile's first provider")
    return problems
