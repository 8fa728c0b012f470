"""Sessions on exactly a profile's execution providers, and proof of where each node ran.

ONNX Runtime falls back silently twice: at session creation (a failing TensorRT/CUDA provider is
dropped with an "EP Error ... Falling back" retry) and per node (nodes a provider does not support
go to the next one, finally the CPU). Both are detected here: the session's providers must be the
requested ones, and ORT's profiler, run over a few inferences, must show every node on a requested
provider with the first (preferred) one running at least one. Where the CPU was not asked for,
``session.disable_cpu_ep_fallback`` makes ORT refuse CPU placement outright.

``session.disable_cpu_ep_fallback`` exists from ONNX Runtime 1.16 (older versions ignore the
entry: there the profiler's node check is what proves placement); :func:`cpu_fallback_guard` says which.

TensorRT engines are cached in a folder keyed by everything that invalidates them (model sha256,
ORT and TensorRT versions, L4T release, every TensorRT option, input shape), so a stale engine is
never loaded. From ONNX Runtime 1.16 the engine is built for explicit shapes
(``trt_profile_min/opt/max_shapes``) with a timing cache; older versions (the Nano's 1.11) reject
those options, so they are left out there and the record says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.device.sysinfo import SysRoot
from edgeproof.profiles import Profile, version_tuple
from edgeproof.runtime.session import ProviderError, graph_level, import_ort, require_available

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
TRT = "TensorrtExecutionProvider"


ORT_EXPLICIT = (1, 16)  # trt_profile_*_shapes, trt_timing_cache_*, session.disable_cpu_ep_fallback
_NVINFER_DIRS = ("/usr/lib/aarch64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64")
_HEADERS = ("/usr/include/aarch64-linux-gnu/NvInferVersion.h", "/usr/include/x86_64-linux-gnu/NvInferVersion.h")
_DEFINE = re.compile(r"#define\s+(?:NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(?:_ENTERPRISE)?\s+(\d+)")


def _from_header(text: str) -> Optional[str]:
    """``NvInferVersion.h`` -> ``"10.3.0"`` (TensorRT 8 ``NV_TENSORRT_*``, 10 ``TRT_*_ENTERPRISE``)."""
    found: Dict[str, str] = {}
    for part, value in _DEFINE.findall(text):
        found.setdefault(part, value)
    return ".".join(found[k] for k in ("MAJOR", "MINOR", "PATCH")) if len(found) == 3 else None


def tensorrt_version(root: Optional[SysRoot] = None) -> Dict[str, Optional[str]]:
    """TensorRT's version and where it was read: the ``tensorrt`` module (live machine only), the
    ``libnvinfer.so.X.Y.Z`` soname, or ``NvInferVersion.h`` under the system root; else why unknown."""
    root = root or SysRoot()
    if not root.recorded:
        try:
            import tensorrt  # type: ignore[import-not-found]

            return {"version": str(tensorrt.__version__), "source": "tensorrt module", "reason": None}
        except (ImportError, AttributeError):
            pass
    libs = [p for d in _NVINFER_DIRS for p in root.glob(f"{d}/libnvinfer.so.*")]
    versions = sorted((version_tuple(p.name[len("libnvinfer.so.") :]), p) for p in libs)
    if versions and len(versions[-1][0]) >= 2:
        best = versions[-1][1]
        return {"version": best.name[len("libnvinfer.so.") :], "source": f"soname {best.name}", "reason": None}
    for header in _HEADERS:
        version = _from_header(root.read(header) or "")
        if version:
            return {"version": version, "source": header, "reason": None}
    return {
        "version": None,
        "source": None,
        "reason": "no tensorrt module, no libnvinfer.so.<version> and no NvInferVersion.h on this machine",
    }


def explicit_options_supported(ort_version: str) -> bool:
    """Whether this ONNX Runtime knows TensorRT shape profiles, timing cache and the CPU-fallback switch."""
    return version_tuple(ort_version)[:2] >= ORT_EXPLICIT


def cpu_fallback_guard(ort_version: str, wanted: List[str]) -> Dict[str, Any]:
    """How node fallback to the CPU is prevented or caught, for the record."""
    if CPU in wanted:
        return {"disable_cpu_ep_fallback": False, "how": "not needed: the CPU is one of the profile's providers"}
    if explicit_options_supported(ort_version):
        return {"disable_cpu_ep_fallback": True, "how": "session.disable_cpu_ep_fallback=1 (ORT >= 1.16)"}
    return {
        "disable_cpu_ep_fallback": False,
        "how": f"profiler node check only: ORT {ort_version} < 1.16 ignores session.disable_cpu_ep_fallback",
    }


def shape_text(input_name: str, size: Tuple[int, int], batch: int, nhwc: bool = False) -> str:
    """``name:BxCxHxW`` (``name:BxHxWxC`` for a uint8 pixel input), as TensorRT's options and trtexec spell it."""
    h, w = int(size[0]), int(size[1])
    return f"{input_name}:{batch}x{h}x{w}x3" if nhwc else f"{input_name}:{batch}x3x{h}x{w}"


def trt_shape_options(
    input_name: str, size: Tuple[int, int], batches: Tuple[int, int, int], nhwc: bool = False
) -> Dict[str, str]:
    """``trt_profile_{min,opt,max}_shapes`` for one image input at batches ``(min, opt, max)``."""
    keys = ("min", "opt", "max")
    return {f"trt_profile_{k}_shapes": shape_text(input_name, size, b, nhwc) for k, b in zip(keys, batches)}


def trt_options(
    base: Dict[str, Any], ort_version: str, shapes: Optional[Dict[str, str]], cache_dir: Optional[Path]
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The TensorRT options a session gets, and a note of what was (not) set and why."""
    options = dict(base)
    if not explicit_options_supported(ort_version):
        reason = f"ORT {ort_version} < 1.16: no explicit shape profiles or timing cache (the EP builds per shape seen)"
        return options, {"profile_shapes": None, "timing_cache": None, "reason": reason}
    if shapes:
        for key, value in shapes.items():
            options.setdefault(key, value)
    if cache_dir is not None:
        options.setdefault("trt_timing_cache_enable", True)
        options.setdefault("trt_timing_cache_path", str(cache_dir))
    note = {
        "profile_shapes": {k: options[k] for k in sorted(options) if k.startswith("trt_profile_")} or None,
        "timing_cache": options.get("trt_timing_cache_path") if options.get("trt_timing_cache_enable") else None,
        "reason": None if shapes else "static input shape: TensorRT needs no shape profile",
    }
    return options, note


def engine_cache_key(facts: Dict[str, Any]) -> str:
    """A short key over every fact an engine depends on (model sha256, versions, L4T, precision, shape)."""
    blob = json.dumps(facts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def provider_list(
    profile: Profile, cache_dir: Optional[Path], shapes: Optional[Dict[str, str]] = None, ort_version: str = "0"
) -> List[Tuple[str, Dict[str, Any]]]:
    """``(name, options)`` per provider; TensorRT's engine (and, ORT >= 1.16, timing) cache go to ``cache_dir``."""
    out = []
    for p in profile.providers:
        options = dict(p.options)
        if p.name == TRT:
            options, _note = trt_options(options, ort_version, shapes, cache_dir)
            if cache_dir is not None and options.get("trt_engine_cache_enable"):
                options.setdefault("trt_engine_cache_path", str(cache_dir))
        out.append((p.name, options))
    return out


def create_profiled_session(
    model: Path,
    profile: Profile,
    cache_dir: Optional[Path],
    profiling_prefix: Optional[Path] = None,
    shapes: Optional[Dict[str, str]] = None,
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
    chosen = provider_list(profile, cache_dir, shapes, str(ort.__version__))
    names, opts = [n for n, _ in chosen], [o for _, o in chosen]
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


def count_problems(
    wanted: List[str], counts: Dict[str, int], examples: Optional[Dict[str, List[str]]] = None
) -> List[str]:
    """Why node counts per provider (``bench.json`` ``providers.nodes``) do not prove the profile's providers
    ran the graph (empty: they do). One reading for the board's refusal and the device gate's check of the
    record: no node run at all, a node on a provider the profile did not ask for, none on its first."""
    if not any(counts.values()):
        return ["the profiler recorded no node runs: placement unproven"]
    problems = []
    for provider, n in sorted(counts.items()):
        if provider not in wanted and n:
            shown = f" (e.g. {examples[provider][:3]})" if examples and provider in examples else ""
            problems.append(f"{n} node(s) ran on {provider}, not a profile provider{shown}")
    if not counts.get(wanted[0]):
        problems.append(f"no node ran on {wanted[0]}, the profile's first provider")
    return problems


def placement_problems(wanted: List[str], placement: Dict[str, List[str]]) -> List[str]:
    """Why the node placement does not prove the profile's providers ran (empty: it does)."""
    return count_problems(wanted, {p: len(nodes) for p, nodes in placement.items()}, placement)
