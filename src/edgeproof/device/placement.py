"""Where the nodes ran: a session built once with ORT's profiler, which provider ran each node, and a
refusal when the profile's providers did not run them all (the board's side of the ``providers`` rule).

Used for the released model and for every candidate (:mod:`edgeproof.device.candidates`), so both
record the same ``providers`` section (``session``, ``nodes``, ``problems``) for the device gate.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

from edgeproof.device.gated import EXIT_BAD_INPUT, EXIT_PROVIDERS, Refused
from edgeproof.device.providers import create_profiled_session, node_placement, placement_problems
from edgeproof.profiles import Profile
from edgeproof.runtime.detector import Detector, spatial_dims, takes_pixels
from edgeproof.runtime.session import ProviderError

PLACEMENT_RUNS = 3


def _placement(
    model_path: Path, profile: Profile, cache_dir: Optional[Path], input_size: Any, shapes: Any
) -> Dict[str, Any]:
    """Build the session once with profiling: engine build time, and which provider ran each node."""
    with tempfile.TemporaryDirectory(prefix="edgeproof-ort-profile-") as tmp:
        session, create_s = create_profiled_session(model_path, profile, cache_dir, Path(tmp) / "ort", shapes)
        check_input_size(session, input_size, model_path)
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


def check_input_size(session: Any, size: Any, model_path: Path) -> None:
    """Refuse (exit 2) a model whose fixed input height/width differ from ``deploy.json``'s ``input_size``.

    Without this check ONNX Runtime raises mid-run on the first letterboxed image and no result is written.
    """
    inp = session.get_inputs()[0]
    shape, pixels = list(inp.shape), takes_pixels(inp)
    hw = spatial_dims(shape, pixels)
    fixed = [d for d in hw if isinstance(d, int)]
    if len(hw) != 2 or (len(fixed) == 2 and fixed != [int(size[0]), int(size[1])]):
        layout = "(N, H, W, 3) uint8" if pixels else "(N, 3, H, W)"
        raise Refused(
            "input_size",
            f"{model_path}: model input {shape} does not take deploy.json input_size {list(size)} {layout}",
            EXIT_BAD_INPUT,
        )


def _gray(size: Any) -> Any:
    import numpy as np

    return np.full((int(size[0]), int(size[1]), 3), 114, np.uint8)


def placed_session(
    model_path: Path, profile: Profile, cache_dir: Optional[Path], size: Any, shapes: Any
) -> Dict[str, Any]:
    """The profiled placement run; a refusal when the providers fail or a node ran off the profile's providers."""
    try:
        placed = _placement(model_path, profile, cache_dir, size, shapes)
    except ProviderError as exc:
        raise Refused("providers", str(exc), EXIT_PROVIDERS) from None
    if placed["problems"]:
        raise Refused("providers", "node placement: " + "; ".join(placed["problems"]), EXIT_PROVIDERS)
    return placed
