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
    pooled = {k: v for k, v in result.items() if k != "classes"}
    assert pooled == {
        "reference_detections": 3,
        "detections": 4,
        "matched": 1,
        "lost": 2,
        "added": 3,
        "matched_share": round(1 / 4, 4),  # of the larger count: the 3 boxes added count as the 2 lost do
    }
    assert result["classes"]["2"] == {
        "reference_detections": 0,
        "detections": 1,
        "matched": 0,
        "lost": 0,
        "added": 1,
        "matched_share": 0.0,
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

    params = ParityParams(min_detections=2)  # one box per image, two images
    doc = check_parity(reference, variants, [image, image], params, DeploySettings(), {"fp16": "no GPU"})
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


#: twelve 12 px boxes on a 64 px image, apart (no NMS between them)
GRID = [(cx, cy) for cy in (8, 24, 40) for cx in (8, 24, 40, 56)]


def _boxes(classes, nc=3):
    """Raw output with one box per entry of ``classes`` (a class id, or None: no box) at GRID's places."""
    raw = np.zeros((4 + nc, len(GRID)), np.float32)
    for i, cls in enumerate(classes):
        raw[:4, i] = [*GRID[i], 12, 12]
        if cls is not None:
            raw[4 + cls, i] = 0.9
    return raw


def _parity(tmp_path, factory, reference_raw, candidate_raw, n_images=1):
    from PIL import Image

    image = tmp_path / "im.jpg"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(image)
    variants = {"fp32": factory(reference_raw), "int8": factory(candidate_raw)}

    def reference(batch):
        return np.repeat(reference_raw[None], len(batch), axis=0)

    doc = check_parity(reference, variants, [image] * n_images, ParityParams(), DeploySettings())
    return doc["detections"]["variants"]


def test_a_variant_that_adds_boxes_breaks_parity(fixed_detector_factory, tmp_path):
    """Review finding 1: +0.3 on every class score flooded the output (4767 boxes added) and kept parity
    (share = matched / PyTorch's count = 1.0). Boxes added now count as boxes lost do."""
    per = _parity(tmp_path, fixed_detector_factory, _boxes([0] * 6 + [None] * 6), _boxes([0] * 12), n_images=2)
    assert (per["int8"]["matched"], per["int8"]["lost"], per["int8"]["added"]) == (12, 0, 12)
    assert per["int8"]["matched_share"] == 0.5 and per["int8"]["passed"] is False
    assert "optimize.parity.min_matched_share" in per["int8"]["reason"]
    assert per["fp32"]["passed"] is True and "reason" not in per["fp32"]


def test_too_few_detections_are_not_judged_and_a_variant_inventing_boxes_fails(fixed_detector_factory, tmp_path):
    """Review finding 2: a reference with no detections made every variant pass (share 1.0 by default)."""
    nothing = _boxes([None] * 12)
    per = _parity(tmp_path, fixed_detector_factory, nothing, nothing)
    assert per["int8"]["passed"] is None and per["int8"]["matched_share"] is None
    assert "optimize.parity.min_detections (10)" in per["int8"]["reason"] and per["fp32"]["passed"] is None
    per = _parity(tmp_path, fixed_detector_factory, nothing, _boxes([1] * 12))  # PyTorch finds nothing, it 12
    assert per["int8"]["passed"] is False and per["int8"]["matched_share"] == 0.0


def test_a_rare_class_lost_entirely_breaks_parity(fixed_detector_factory, tmp_path):
    """Review finding 4: 3 of 30 reference boxes are class 2 and the variant never outputs class 2; the pooled
    share (27/30 = 0.9) passed. Each class with enough boxes is judged on its own, named in the reason."""
    reference = _boxes([0] * 5 + [1] * 4 + [2] + [None] * 2)
    per = _parity(tmp_path, fixed_detector_factory, reference, _boxes([0] * 5 + [1] * 4 + [None] * 3), n_images=3)
    assert (per["int8"]["reference_detections"], per["int8"]["matched"]) == (30, 27)
    assert per["int8"]["matched_share"] == 0.9  # the pooled share alone still passes
    assert per["int8"]["classes"]["2"]["matched_share"] == 0.0 and per["int8"]["passed"] is False
    assert per["int8"]["reason"].startswith("class 2: 0 matched of 3 PyTorch")
    assert "optimize.parity.min_class_share" in per["int8"]["reason"]
