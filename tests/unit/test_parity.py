"""Detection parity: the share of the reference's boxes a variant finds again, and what it loses/adds."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.postprocess import Detections
from edgeproof.training.params import ParityParams
from edgeproof.training.parity import ParityError, check_parity, compare_detections, raw_parity


def _det(boxes, classes, scores=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores if scores is not None else [0.9] * len(boxes), np.float32)
    return Detections(boxes, scores, np.asarray(classes, np.int64))


def test_matching_needs_the_same_class_and_a_high_iou():
    ref = _det([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [0, 1, 0])
    cand = _det([[0, 0, 10, 10.5], [20, 20, 40, 40], [50, 50, 60, 61.5], [70, 70, 80, 80]], [0, 0, 0, 2])
    # box 1: IoU 0.95, same class -> matched; box 2: right place, wrong class; box 3: IoU 0.87 < 0.9
    result = compare_detections([ref], [cand], iou=0.9)
    assert result == {
        "reference_detections": 3,
        "detections": 4,
        "matched": 1,
        "lost": 2,
        "added": 3,
        "matched_share": round(1 / 3, 4),
    }


def test_one_candidate_box_matches_one_reference_box_only():
    ref = _det([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])
    result = compare_detections([ref], [_det([[0, 0, 10, 10]], [0])], iou=0.9)
    assert (result["matched"], result["lost"], result["added"]) == (1, 1, 0)


def test_raw_parity_threshold_fails_with_the_key_named():
    ref = np.zeros((1, 5, 4), np.float32)
    ok = raw_parity(ref, ref + 1e-4, ParityParams())
    assert ok["max_abs_diff"] == pytest.approx(1e-4, rel=1e-3)
    with pytest.raises(ParityError, match=r"optimize\.parity\.max_abs_diff"):
        raw_parity(ref, ref + 0.1, ParityParams())


def _raw(x0):
    raw = np.zeros((5, 8), np.float32)
    raw[:4, 0] = [x0, 30, 20, 20]  # cx, cy, w, h in input pixels
    raw[4, 0] = 0.9
    return raw


def test_a_variant_that_moves_the_boxes_breaks_parity(fixed_detector_factory, tmp_path):
    from PIL import Image

    image = tmp_path / "im.jpg"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(image)
    variants = {"fp32": fixed_detector_factory(_raw(30)), "int8": fixed_detector_factory(_raw(34))}

    def reference(batch):
        return np.repeat(_raw(30)[None], len(batch), axis=0)

    doc = check_parity(reference, variants, [image, image], ParityParams(), DeploySettings(), {"fp16": "no GPU"})
    per = doc["detections"]["variants"]
    assert per["fp32"]["passed"] and per["fp32"]["matched_share"] == 1.0
    assert per["int8"]["passed"] is False  # 4 px shift of a 20 px box: IoU 0.67
    assert (per["int8"]["lost"], per["int8"]["added"]) == (2, 2)
    assert doc["raw_outputs"]["passed"] is True


def test_each_variant_is_fed_in_its_own_input_form(fixed_detector_factory, tmp_path):
    """optimize.input per variant: fp32 takes float NCHW, int8 the uint8 pixels; parity feeds each its own."""
    import onnx
    from PIL import Image

    from edgeproof.training.graph import uint8_nhwc_input

    image = tmp_path / "im.jpg"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(image)
    model = onnx.load(str(fixed_detector_factory(_raw(30))))
    uint8_nhwc_input(model)
    onnx.save(model, str(tmp_path / "int8.onnx"))
    variants = {"fp32": fixed_detector_factory(_raw(30)), "int8": tmp_path / "int8.onnx"}

    def reference(batch):
        assert batch.dtype == np.float32 and batch.shape[1] == 3  # PyTorch always gets float NCHW
        return np.repeat(_raw(30)[None], len(batch), axis=0)

    doc = check_parity(reference, variants, [image, image], ParityParams(), DeploySettings())
    assert doc["detections"]["variants"]["int8"]["matched_share"] == 1.0
