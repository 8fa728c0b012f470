"""The compute floor: the model's FLOPs divided by this machine's measured matrix-multiply throughput.

No runtime can run the model faster than the floor on this machine (it would have to beat the
matrix-multiply kernels it is built on), so a latency of 1.3x the floor leaves 30 % for memory
traffic, layout changes and the small layers that never reach peak throughput.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.runtime.detector import check_input
from edgeproof.runtime.session import import_ort


def count_flops(path: Path) -> int:
    """FLOPs (2 x multiply-accumulates) of one batch-1 inference over Conv, MatMul and Gemm nodes.

    Output shapes come from one real run (every Conv/MatMul output exposed), so dynamic reshapes in
    the head cannot hide a layer. The run is fed zeros of the model's own input type and layout (float NCHW,
    or uint8 NHWC pixels for ``optimize.input: uint8_nhwc``).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(
        helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes if n.output[0] not in known
    )
    ort = import_ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dtype = check_input(path, inp)  # the runtime's own check: float NCHW or uint8 NHWC pixels, else named
    shape = [1, *(d if isinstance(d, int) else 1 for d in inp.shape[1:])]
    names = [o.name for o in session.get_outputs()]
    shapes = dict(zip(names, (a.shape for a in session.run(names, {inp.name: np.zeros(shape, dtype)})), strict=True))
    flops = 0
    for node in nodes:
        out = shapes[node.output[0]]
        if node.op_type == "Conv":
            flops += 2 * int(np.prod(weights[node.input[1]])) * int(np.prod(out[2:]))
        else:  # (..., M, N) = (..., M, K) @ (K, N): K from the weight
            k = weights[node.input[1]][0] if node.input[1] in weights else 0
            flops += 2 * int(np.prod(out)) * int(k)
    return flops


def _matmul_session(n: int) -> Any:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    ort = import_ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def matmul_gflops(n: int = 1024, runs: int = 10) -> dict[str, float]:
    """ONNX Runtime's float32 ``n x n`` MatMul throughput here (its own kernels, default threads): best, median."""
    session = _matmul_session(n)
    rng = np.random.default_rng(0)
    feed = {"a": rng.random((n, n), np.float32), "b": rng.random((n, n), np.float32)}
    for _ in range(3):
        session.run(None, feed)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return {"best": round(max(rates), 2), "median": round(float(np.median(rates)), 2), "n": n}


SIZES = (256, 512, 1024)  # YOLO's convolutions at 256 px are small GEMMs: the cache-resident sizes count


def matmul_peak(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """The best MatMul throughput over ``sizes`` (GFLOP/s), and each size's figures."""
    by_size = {str(n): matmul_gflops(n) for n in sizes}
    return {"best": max(r["best"] for r in by_size.values()), "by_size": by_size}


CACHE_RESIDENT = 512  # n x n float32 operands up to 512 (3 MiB for a, b, c) stay in the caches here


def floor_by_size(gflop: float, peaks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per MatMul size: its best GFLOP/s over the run's measurements, working set, and the floor it gives."""
    sizes = sorted({int(n) for p in peaks for n in p.get("by_size", {})})
    rows = []
    for n in sizes:
        rate = max(p["by_size"][str(n)]["best"] for p in peaks if str(n) in p.get("by_size", {}))
        rows.append(
            {
                "n": n,
                "working_set_mib": round(3 * n * n * 4 / 2**20, 2),
                "kind": "cache-resident" if n <= CACHE_RESIDENT else "large-matrix",
                "gflop_per_s": rate,
                "floor_ms": round(gflop / rate * 1e3, 3),
            }
        )
    return rows


def compute_floor(gflop: float, peaks: list[dict[str, Any]]) -> dict[str, Any]:
    """The floor in ms from the model's GFLOP and the best of the MatMul measurements taken in the run;
    ``floor_by_size``: the floor each MatMul size alone would give (cache-resident and large-matrix)."""
    best = max(p["best"] for p in peaks)
    return {
        "gflop": round(gflop, 4),
        "matmul_gflop_per_s": {"best": best, "measurements": peaks},
        "compute_floor_ms": round(gflop / best * 1e3, 3),
        "floor_by_size": floor_by_size(gflop, peaks),
    }


LARGE_BYTES = 128 * 2**20  # past any L3 this project runs on: main memory


def copy_gb_per_s(nbytes: int, runs: int) -> float:
    """One core's numpy copy rate for an ``nbytes`` array: bytes read plus written per second (GB/s), best of
    ``runs``."""
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # first touch: page faults are not the copy's
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return round(2 * nbytes / best / 1e9, 1)


def l2_bytes(cpu: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """The L2 cache the first core sees, in bytes, from Linux's sysfs; ``None`` where it does not say."""
    for index in sorted(cpu.glob("index*")):
        try:
            if (index / "level").read_text().strip() != "2":
                continue
            size = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20}.get(size[-1:], 1)
        digits = size.rstrip("KM")
        return int(digits) * scale if digits.isdigit() else None
    return None


def memory_roof() -> dict[str, Any]:
    """The rates an elementwise operator could reach here, on one core: copying an L2-resident array and a
    main-memory one (GB/s, read plus written), and the L2 size they are set against."""
    l2 = l2_bytes()
    inside = l2 // 4 if l2 else 64 * 1024  # source and destination together fill half the L2
    return {
        "l2_resident_gb_per_s": copy_gb_per_s(inside, runs=200),
        "main_memory_gb_per_s": copy_gb_per_s(LARGE_BYTES, runs=5),
        "l2_bytes": l2,
        "l2_copy_bytes": inside,
    }
