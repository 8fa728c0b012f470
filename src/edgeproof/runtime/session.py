"""ONNX Runtime sessions that run on exactly the providers asked for.

ONNX Runtime quietly falls back to the CPU provider when a requested provider cannot load (a
missing CUDA/TensorRT library, a wheel without GPU support). A benchmark taken after such a
fallback would gate a Jetson release on CPU numbers, so here it is an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence, Tuple

log = logging.getLogger(__name__)

_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


@dataclass(frozen=True)
class SessionSettings:
    """How a session runs: execution providers (priority order), online graph optimization, threads."""

    providers: Tuple[str, ...] = ("CPUExecutionProvider",)
    graph_optimization: str = "all"  # disable | basic | extended | all
    intra_op_threads: int = 0  # 0: ONNX Runtime's default


class ProviderError(RuntimeError):
    """A requested execution provider is not available or not the one running."""


def import_ort() -> Any:
    """Import onnxruntime, with install advice when it is missing."""
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "onnxruntime is not installed: `pip install edgeproof[cpu]` on a PC, `edgeproof[gpu]` for CUDA, "
            "or the JetPack-matched onnxruntime-gpu wheel on a Jetson (never both onnxruntime and onnxruntime-gpu)"
        ) from exc
    return onnxruntime


def graph_level(name: str) -> Any:
    """The ``GraphOptimizationLevel`` for a params name (disable/basic/extended/all)."""
    ort = import_ort()
    try:
        return getattr(ort.GraphOptimizationLevel, _LEVELS[name])
    except KeyError:
        raise ValueError(f"unknown graph optimization level {name!r}; choose from {list(_LEVELS)}") from None


def require_available(ort: Any, providers: Sequence[str]) -> None:
    """Raise :class:`ProviderError` unless every provider is built into this onnxruntime."""
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise ProviderError(
            f"requested execution provider(s) {missing} not available in this onnxruntime "
            f"{ort.__version__} build; available: {available}"
        )


def create_session(
    model: Path | str | bytes,
    providers: List[str],
    graph_optimization: str = "all",
    intra_op_threads: int = 0,
    optimized_model_path: Path | None = None,
    name: str | None = None,
) -> Any:
    """An ``InferenceSession`` on ``providers`` (in priority order); raise if any is not running.

    ``model`` is a file or its bytes; ``name`` is how errors call it (default: the path).
    """
    ort = import_ort()
    require_available(ort, providers)
    options = ort.SessionOptions()
    options.graph_optimization_level = graph_level(graph_optimization)
    options.intra_op_num_threads = intra_op_threads
    options.log_severity_level = 3
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime's own errors (NoSuchFile, InvalidProtobuf, Fail) are bare Exceptions
        name = name or ("<in-memory model>" if isinstance(model, bytes) else str(model))
        raise ValueError(f"{name}: onnxruntime cannot load this model ({type(exc).__name__}: {exc})") from None
    running = session.get_providers()
    fell_back = [p for p in providers if p not in running]
    if fell_back:
        raise ProviderError(
            f"execution provider(s) {fell_back} were requested but the session runs on {running}: "
            "onnxruntime fell back silently (missing CUDA/TensorRT libraries?)"
        )
    log.debug("session on %s, graph optimization %s", running, graph_optimization)
    return session
