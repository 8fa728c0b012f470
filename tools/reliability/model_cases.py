"""Bad models, checkpoints and measurement files fed to detect, evaluate, benchmark, export and gate."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from reliability import sandbox as sb
from reliability.cases import Call, Case

MODEL = "models/candidate.onnx"


def _detect(repo: Path, model: str) -> Call:
    img = sb.image(repo / "images" / "probe.jpg")
    return Call("cli", ["detect", model, str(img.relative_to(repo))], (Path(model).name,))


def _onnx_bytes(kind: str) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        path = sb.onnx_model(repo / MODEL)
        path.write_bytes(os.urandom(4096) if kind == "random" else path.read_bytes()[:120])
        return _detect(repo, MODEL)

    return build


def _onnx_signature(**kw: object) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        sb.onnx_model(repo / MODEL, **kw)  # type: ignore[arg-type]
        return _detect(repo, MODEL)

    return build


def _prepared(repo: Path) -> Path:
    from edgeproof.config import parse_params
    from edgeproof.data.synthetic import generate

    synthetic = {"n_train": 2, "n_val": 2, "image_size": 64, "classes": ["circle", "square"]}
    out = repo / "data" / "prepared"
    generate(parse_params({"data": {"synthetic": synthetic}}).data.synthetic, 0, out)
    sb.write_params(repo, {})
    return out


def _eval_bad_gt(repo: Path) -> Call:
    prepared = _prepared(repo)
    sb.onnx_model(repo / MODEL)
    gt = prepared / "annotations" / "val.json"
    gt.write_text(gt.read_text()[:200])
    return Call("cli", ["evaluate", "--model", MODEL, "--data", "data/prepared"], ("val.json",))


def _bench_no_images(repo: Path) -> Call:
    prepared = _prepared(repo)
    sb.onnx_model(repo / MODEL)
    for image in (prepared / "images" / "val").iterdir():
        image.unlink()
    return Call("cli", ["benchmark", "--model", MODEL, "--data", "data/prepared"], ("val",))


def _truncated_pt(repo: Path) -> Call:
    sb.write_params(repo, {})
    weights = repo / "models" / "best.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"PK\x03\x04" + os.urandom(2000))  # a torch zip archive cut short
    argv = ["--weights", "models/best.pt", "--out", "models/model.onnx", "--metrics", "metrics/export.json"]
    return Call("stage:export", argv, ("best.pt",), isolated=True)


def _gate(eval_over: dict | str, bench_over: dict, *needles: str) -> Callable[[Path], Call]:
    """The gate stage on a real model file with eval/bench metrics for exactly it, changed by the overrides."""

    def build(repo: Path) -> Call:
        from edgeproof.io import sha256_file

        sb.write_params(repo, {})
        sha = sha256_file(sb.onnx_model(repo / MODEL))
        (repo / "metrics").mkdir(exist_ok=True)
        ev = eval_over if isinstance(eval_over, str) else _metrics(sha, **eval_over)
        (repo / "metrics" / "eval.json").write_text(ev)
        (repo / "metrics" / "bench.json").write_text(_metrics(sha, **bench_over))
        argv = ["--model", MODEL, "--eval", "metrics/eval.json", "--bench", "metrics/bench.json"]
        (repo / "metrics" / "train.json").write_text(json.dumps({"epochs": 1}))
        argv += ["--report-json", "reports/gate.json", "--report-md", "reports/gate.md"]
        argv += ["--headline", "metrics/headline.json", "--train-metrics", "metrics/train.json"]
        return Call("stage:gate", argv, needles)

    return build


def _metrics(sha: str, **overrides: object) -> str:
    cross = {"pycocotools": 0.5, "independent": 0.5, "ultralytics": None, "passed": True,
             "tolerance": {"independent": 0.001, "ultralytics": 0.02}, "skipped": {"ultralytics": "off"}}  # fmt: skip
    data = {"map50": 0.9, "map50_95": 0.5, "model_sha256": sha, "cross_check": cross}
    data |= {"fps_e2e": 50.0, "latency_ms": {"p95": 5.0}}
    data.update(overrides)
    return json.dumps(data, allow_nan=True)


MODEL_CASES = [
    Case("onnx-corrupt", "an .onnx file of random bytes", _onnx_bytes("random")),
    Case("onnx-truncated", "an .onnx file cut off after 120 bytes", _onnx_bytes("truncated")),
    Case("onnx-wrong-input-shape", "an ONNX model taking 1-channel input", _onnx_signature(in_shape=(1, 1, 64, 64))),
    Case("onnx-wrong-input-dtype", "an ONNX model taking int8 input", _onnx_signature(in_type="int8")),
    Case("onnx-not-a-detector", "an ONNX model whose output has 3 rows", _onnx_signature(out_rows=3)),
    Case("pt-truncated", "a truncated best.pt given to export", _truncated_pt),
    Case("eval-prepared-gt-truncated", "a prepared val.json cut off, fed to evaluate", _eval_bad_gt),
    Case("benchmark-no-val-images", "a prepared dataset without val images, fed to benchmark", _bench_no_images),
    Case("gate-eval-not-json", "metrics/eval.json that is not JSON", _gate("{", {}, "eval.json")),
    Case("gate-impossible-map", "eval.json claiming map50: 7.0", _gate({"map50": 7.0}, {}, "map50", "FAILED")),
    Case(
        "gate-negative-latency",
        "bench.json claiming p95: -3 ms",
        _gate({}, {"latency_ms": {"p95": -3.0}}, "p95", "FAILED"),
    ),
    Case(
        "gate-infinite-fps",
        "bench.json claiming fps_e2e: Infinity",
        _gate({}, {"fps_e2e": float("inf")}, "fps_e2e", "FAILED"),
    ),
    Case(
        "gate-failed-cross-check",
        "eval.json whose cross-check disagrees",
        _gate({"cross_check": {"passed": False}}, {}, "cross_check", "FAILED"),
    ),
]
