"""The TensorRT engine a profile ships on: explicit shapes, cache folders and their keys.

The figures that gate (model-only, end to end, on-device mAP) are measured on an engine built for
exactly the profile's batch (``trt_profile_min = opt = max``), in its own cache folder. The batch
sweep runs afterwards in another session with a profile spanning its batches and *another* cache
folder, so it never rebuilds or overwrites the gated engine. A cache folder's key covers everything
an engine depends on: the model's sha256, ONNX Runtime's and TensorRT's versions, the L4T release,
every TensorRT option and the input shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.device.providers import (
    TRT,
    engine_cache_key,
    explicit_options_supported,
    shape_text,
    tensorrt_version,
    trt_options,
    trt_shape_options,
)
from edgeproof.device.sysinfo import SysRoot
from edgeproof.io import size_mb
from edgeproof.profiles import Profile


def model_input(model_path: Path) -> Tuple[str, List[Any], bool]:
    """The model's first input name, shape and whether it takes uint8 NHWC pixels (``optimize.input``), read
    with a CPU session (cheap; no engine is built)."""
    from edgeproof.runtime.detector import takes_pixels
    from edgeproof.runtime.session import import_ort

    inp = import_ort().InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).get_inputs()[0]
    return str(inp.name), list(inp.shape), takes_pixels(inp)


def plan(
    profile: Profile, model_path: Path, size: Tuple[int, int], ort_version: str, root: SysRoot
) -> Optional[Dict[str, Any]]:
    """Shapes for the gated and the sweep sessions and TensorRT's version; ``None`` without TensorRT.

    A model with a static batch gets no shape profile (TensorRT needs them for dynamic axes only) and
    is timed at its own batch, as :class:`~edgeproof.runtime.detector.Detector` does.
    """
    if TRT not in profile.provider_names:
        return None
    name, shape, nhwc = model_input(model_path)
    static = isinstance(shape[0], int) if shape else False
    b = int(shape[0]) if static else profile.batch
    out: Dict[str, Any] = {
        "ort": ort_version,
        "tensorrt": tensorrt_version(root),
        "gated": None,
        "sweep": None,
        "shape": shape_text(name, size, b, nhwc),  # the gated input, as trtexec's --shapes
    }
    if explicit_options_supported(ort_version) and not static:
        sweep = [b, *profile.batch_sweep]
        out["gated"] = trt_shape_options(name, size, (b, b, b), nhwc)
        out["sweep"] = trt_shape_options(name, size, (min(sweep), b, max(sweep)), nhwc)
    return out


def cache_folder(
    cache_root: Path,
    profile: Profile,
    model: Dict[str, Any],
    facts: Dict[str, Any],
    trt: Optional[Dict[str, Any]],
    role: str,
) -> Tuple[Optional[Path], Optional[Dict[str, Any]]]:
    """The engine cache folder for ``role`` (``gated`` or ``sweep``) and its key facts (None: no TensorRT)."""
    if trt is None:
        return None, None
    base = dict(profile.providers[profile.provider_names.index(TRT)].options)
    # every option the session gets, but the cache paths (derived from this key)
    options, note = trt_options(base, trt["ort"], trt[role], Path("cache"))
    options = {k: v for k, v in options.items() if not k.endswith("_path")}
    key_facts = {
        "model_sha256": model["sha256"],
        "variant": model["variant"],
        "onnxruntime": trt["ort"],
        "tensorrt": trt["tensorrt"]["version"],
        "l4t": (facts.get("jetson") or {}).get("l4t"),
        "trt_options": options,
        "batch": profile.batch if role == "gated" else list(profile.batch_sweep),
        "role": role,
    }
    key = engine_cache_key(key_facts)
    info = {"key": key, "facts": key_facts, "tensorrt": trt["tensorrt"], **note}
    return cache_root / key, info


def engines_mb(folders: List[Optional[Path]]) -> Optional[float]:
    """Size of the TensorRT engines (``*.engine``) in the cache folders, MB (10^6 bytes: :func:`size_mb`);
    ``None`` when none was built."""
    files = [f for d in folders if d is not None and d.is_dir() for f in d.glob("*.engine")]
    return size_mb(sum(f.stat().st_size for f in files), 3) if files else None
