"""A build side with a known answer: a fixed-output ONNX "detector" whose one box is exactly each val
image's ground truth (mAP 1.0), the build-side metrics, and a ``reports/release.json`` that follows the
shared contract (the release stage lives on another branch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edgeproof.io import sha256_file
from tests.conftest import make_fixed_detector

IMGSZ = 64
CATEGORY_ID = 7  # class index 0 -> category id 7: the bundle must carry the mapping


def fixed_raw() -> np.ndarray:
    """One anchor: box centre (32, 32), size 16 x 16 in input pixels, class 0 score 0.9."""
    raw = np.zeros((5, 4), np.float32)
    raw[:, 0] = [32, 32, 16, 16, 0.9]
    raw[:, 1] = [8, 8, 4, 4, 0.0]
    return raw


def write_val(root: Path, n_val: int = 6) -> None:
    """``data/prepared`` val split: 64 x 64 images, each with one ground-truth box where the model puts it."""
    prepared = root / "data" / "prepared"
    (prepared / "images" / "val").mkdir(parents=True, exist_ok=True)
    (prepared / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n_val):
        name = f"val_{i:06d}.jpg"
        pixels = rng.integers(0, 255, (IMGSZ, IMGSZ, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(prepared / "images" / "val" / name)
        images.append({"id": i + 1, "file_name": name, "width": IMGSZ, "height": IMGSZ})
        annotations.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": CATEGORY_ID,
                "bbox": [24.0, 24.0, 16.0, 16.0],
                "area": 256.0,
                "iscrowd": 0,
            }
        )
    gt = {"images": images, "annotations": annotations, "categories": [{"id": CATEGORY_ID, "name": "thing"}]}
    (prepared / "annotations" / "val.json").write_text(json.dumps(gt))
    meta = {"names": ["thing"], "category_ids": [CATEGORY_ID], "source": "test"}
    (prepared / "meta.json").write_text(json.dumps(meta))


def release_report(model_rel: str, sha: str, profiles: list[str], n_val: int = 6) -> dict[str, Any]:
    """A ``reports/release.json`` in the shared contract's shape: fp32 is the release for every profile, evaluated
    over :func:`write_val`'s ``n_val`` images (one box each)."""
    fp32 = {
        "path": model_rel,
        "sha256": sha,
        "evaluated": True,
        "map50_95": 1.0,
        "map50": 1.0,
        "map_drop": 0.0,
        "fps_e2e": 500.0,
        "latency_ms_p95": 2.0,
        "latency_model_ms_p50": 1.0,
        "n_images": n_val,
        "n_gt": n_val,
        "per_class": [{"category_id": CATEGORY_ID, "name": "thing", "n_gt": n_val}],
    }
    return {
        "build_profile": "cpu-ci",
        "release_variant": "fp32",
        "reference": {"variant": "fp32", "path": model_rel, "sha256": sha, "map50_95": 1.0, "map50": 1.0},
        "variants": {
            "fp32": fp32,
            "fp16": {
                "path": "models/optimized/fp16.onnx",
                "sha256": "0" * 64,
                "evaluated": False,
                "reason": "fp16 numerics need a GPU provider",
            },
        },
        "profiles": {
            p: {
                "variant": "fp32",
                "path": model_rel,
                "sha256": sha,
                "measured_here": p == "cpu-ci",
                "reason": "test fixture",
                "rejected": [],
            }
            for p in profiles
        },
    }


def write_build_side(root: Path, profiles: list[str], n_val: int = 6, pixels: bool = False) -> str:
    """Everything the bundle stage reads, under ``root``; returns the model's sha256. ``pixels``: the model
    takes the letterboxed uint8 pixels (``optimize.input: uint8_nhwc``), as the CPU int8 does."""
    write_val(root, n_val)
    model_rel = "models/optimized/fp32.onnx"
    (root / model_rel).parent.mkdir(parents=True, exist_ok=True)
    make_fixed_detector(root / model_rel, fixed_raw(), IMGSZ, {0: "thing"})
    if pixels:
        import onnx

        from edgeproof.training.graph import uint8_nhwc_input

        model = onnx.load(str(root / model_rel))
        uint8_nhwc_input(model)
        onnx.save(model, str(root / model_rel))
    sha = sha256_file(root / model_rel)
    for rel, data in (
        ("metrics/eval.json", {"model_sha256": sha, "map50": 1.0, "map50_95": 1.0}),
        ("metrics/bench.json", {"model_sha256": sha, "fps_e2e": 500.0, "latency_ms": {"p95": 2.0}}),
        ("reports/release.json", release_report(model_rel, sha, profiles, n_val)),
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(data, indent=2))
    return sha


# The tests' val split (write_val) is a few images of one box each, far below the val set an mAP needs to be
# judged (profiles' gate.min_val_images / min_val_boxes_per_class): every test profile (tests.device.conftest's
# profiles_raw) asks only for what it has; tests/device/test_eval_size.py judges the default minimum.
TINY_VAL = {"min_val_images": 1, "min_val_boxes_per_class": 1}
# Likewise they time a few frames (e2e_images 2 to 4), far below the 20 a p95 needs (gate.min_timed_frames):
# every test profile asks only that bench.json says how many; tests/device/test_gate_properties.py holds the count.
TINY_TIMED = {"min_timed_frames": 1}
TEST_PROFILES: dict[str, Any] = {
    "cpu-ci": {"warmup": 1, "runs": 5, "e2e_images": 4, "batch_sweep": [1, 2], "gate": {"min_fps": 1.0}},
    "cpu-ci-strict": {  # the same machine and model, a speed threshold no machine meets
        "match": {"arch": ["x86_64", "AMD64"]},
        "warmup": 1,
        "runs": 3,
        "e2e_images": 2,
        "batch_sweep": [1],
        "gate": {"min_fps": 1.0e6},
    },
    "cpu-ci-build-map": {  # mAP not re-measured on the device: the build side's evaluation of the file stands
        "match": {"arch": ["x86_64", "AMD64"]},
        "evaluate_on_device": False,
        "warmup": 1,
        "runs": 3,
        "e2e_images": 2,
        "batch_sweep": [1],
    },
    "cpu-ci-clip": {  # end to end on the bundle's recorded clip instead of image files
        "match": {"arch": ["x86_64", "AMD64"]},
        "e2e_input": "clip",
        "e2e_images": 15,
        "warmup": 1,
        "runs": 3,
        "batch_sweep": [1],
        "evaluate_on_device": False,
    },
    "cpu-trt-fake": {  # TensorRT on this machine through a fake ORT session (tests/device/test_trt_plan.py)
        "match": {"arch": ["x86_64", "AMD64"]},
        "providers": [
            {
                "name": "TensorrtExecutionProvider",
                "options": {"trt_fp16_enable": True, "trt_engine_cache_enable": True},
            },
            {"name": "CUDAExecutionProvider"},
        ],
        "warmup": 1,
        "runs": 3,
        "e2e_images": 2,
        "batch_sweep": [1, 2, 4],
        "evaluate_on_device": False,
    },
    "cpu-cuda": {  # matches this machine but needs a provider this onnxruntime build does not have
        "match": {"arch": ["x86_64", "AMD64"]},
        "providers": [{"name": "CUDAExecutionProvider"}],
        "warmup": 1,
        "runs": 3,
        "e2e_images": 2,
        "batch_sweep": [1],
    },
}
