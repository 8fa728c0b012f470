"""Decode straight to size (issue 22): what JPEG DCT scaling saves, and what it does to the mAP.

    python benchmarks/decode_to_size.py --model models/optimized/fp32.onnx --image-size 1024

Writes a synthetic val split at ``--image-size`` (larger than the model input, as camera frames
are) into a temporary folder, then, on the same model and images:

* **decode time**: the median per image of ``decode(path)`` and of ``decode(path, reduce_to=input)``
  over ``--repeat`` interleaved rounds, and the same for decode + letterbox (what a frame costs
  before inference);
* **mAP**: pycocotools on the detections of each path, at ``params.yaml: evaluate``'s settings.
  The reduced path letterboxes with the full-size geometry (so boxes map back exactly) and only
  the pixels differ.

The model must have been trained on the synthetic classes. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import load_params
from edgeproof.data.synthetic import generate
from edgeproof.evaluation.coco import score_coco
from edgeproof.evaluation.predict import to_coco_results
from edgeproof.evaluation.run import map_postprocess
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.image import decode
from edgeproof.runtime.preprocess import PAD_VALUE, _resize, letterbox, letterbox_geometry, to_input
from edgeproof.runtime.session import SessionSettings


def _full(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, Any]:
    return letterbox(decode(path)[0], size)


def _reduced(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, Any]:
    pixels, (h, w) = decode(path, reduce_to=size)
    lb = letterbox_geometry(h, w, size)  # the full-size frame: boxes map back to the original
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    canvas[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w] = _resize(pixels, lb.new_w, lb.new_h)
    return canvas, lb


def _timings(paths: list[Path], size: tuple[int, int], repeat: int) -> dict[str, float]:
    jobs: dict[str, Callable[[Path], Any]] = {
        "decode_full_ms": lambda p: decode(p),
        "decode_reduced_ms": lambda p: decode(p, reduce_to=size),
        "decode_letterbox_full_ms": lambda p: _full(p, size),
        "decode_letterbox_reduced_ms": lambda p: _reduced(p, size),
    }
    samples: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeat):
        for name, job in jobs.items():  # interleaved: drifts in machine load hit every path alike
            start = time.perf_counter()
            for p in paths:
                job(p)
            samples[name].append((time.perf_counter() - start) * 1000 / len(paths))
    return {k: round(statistics.median(v), 3) for k, v in samples.items()}


def _score(detector: Detector, gt: dict[str, Any], folder: Path, prep: Callable[..., Any]) -> dict[str, Any]:
    class_to_category = {i: c["id"] for i, c in enumerate(gt["categories"])}
    results: list[dict[str, Any]] = []
    for im in gt["images"]:
        canvas, lb = prep(folder / im["file_name"], detector.input_size)
        raw = detector.infer(to_input([canvas]))
        det = detector.postprocess(raw[:1], [lb])[0]
        results += to_coco_results(int(im["id"]), det, class_to_category)
    metrics = score_coco(gt, results).metrics
    return {k: metrics[k] for k in ("map50_95", "map50")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--n-val", type=int, default=50)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    params = load_params(args.params)
    synthetic = params.data.synthetic.model_copy(
        update={"image_size": args.image_size, "n_train": 1, "n_val": args.n_val}
    )
    detector = Detector(args.model, map_postprocess(params.evaluate), SessionSettings(("CPUExecutionProvider",)))
    with tempfile.TemporaryDirectory() as tmp:
        generate(synthetic, params.data.seed, Path(tmp))
        gt = json.loads((Path(tmp) / "annotations" / "val.json").read_text())
        folder = Path(tmp) / "images" / "val"
        paths = [folder / im["file_name"] for im in gt["images"]]
        out = {
            "image_size": args.image_size,
            "images": len(paths),
            "input_size": list(detector.input_size),
            "timing": _timings(paths, detector.input_size, args.repeat),
            "full": _score(detector, gt, folder, _full),
            "reduced": _score(detector, gt, folder, _reduced),
        }
    out["map50_95_change"] = round(out["reduced"]["map50_95"] - out["full"]["map50_95"], 6)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
