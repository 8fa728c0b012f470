"""Decoding and NMS against hand-computed cases (the runtime's one decode/NMS path)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.postprocess import Postprocess, box_iou, nms, xywh_to_xyxy
from edgeproof.runtime.preprocess import Letterbox


def postprocess(raw, conf, iou, max_det=300, multi_label=False, agnostic=False):
    return Postprocess(conf, iou, max_det, multi_label, agnostic)(raw)


def _raw(rows):
    """Build a (4 + nc, n) raw output from rows of (cx, cy, w, h, *class_scores)."""
    return np.asarray(rows, np.float32).T


def test_xywh_to_xyxy():
    assert xywh_to_xyxy(np.array([[10.0, 20.0, 4.0, 6.0]])) == pytest.approx(np.array([[8.0, 17.0, 12.0, 23.0]]))


def test_iou_hand_values():
    box = np.array([0.0, 0.0, 10.0, 10.0])
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]], np.float32)
    assert box_iou(box[None], others)[0] == pytest.approx([1.0, 50 / 150, 0.0, 0.25])


def test_crowd_iou_is_intersection_over_the_first_box():
    det = np.array([[0.0, 0.0, 10.0, 10.0]])
    region = np.array([[5.0, 0.0, 105.0, 10.0]])
    assert box_iou(det, region)[0, 0] == pytest.approx(50 / 1050)
    assert box_iou(det, region, crowd=np.array([True]))[0, 0] == pytest.approx(0.5)


def test_nms_suppresses_above_threshold_only():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [1, 0, 11, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    # IoU(0,1) = 1/3, IoU(0,2) = 9/11
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.9).tolist() == [0, 1, 2]
    assert nms(boxes, scores, 0.3).tolist() == [0]
    assert nms(boxes, scores, 0.9, max_keep=2).tolist() == [0, 1]


def test_postprocess_filters_decodes_and_is_class_aware():
    raw = _raw(
        [
            (50, 50, 20, 20, 0.9, 0.1),  # class 0
            (51, 50, 20, 20, 0.1, 0.8),  # same place, class 1: survives class-aware NMS
            (52, 50, 20, 20, 0.85, 0.0),  # duplicate of the first, class 0: suppressed
            (10, 10, 4, 4, 0.2, 0.05),  # below conf 0.25
        ]
    )
    det = postprocess(raw, conf=0.25, iou=0.5)
    assert len(det) == 2
    assert det.classes.tolist() == [0, 1]
    assert det.scores == pytest.approx([0.9, 0.8])
    assert det.boxes[0] == pytest.approx([40, 40, 60, 60])
    agnostic = postprocess(raw, conf=0.25, iou=0.5, agnostic=True)
    assert len(agnostic) == 1 and agnostic.classes.tolist() == [0]


def test_multi_label_keeps_every_class_above_conf():
    raw = _raw([(50, 50, 20, 20, 0.6, 0.5)])
    assert len(postprocess(raw, conf=0.25, iou=0.5, multi_label=False)) == 1
    det = postprocess(raw, conf=0.25, iou=0.5, multi_label=True)
    assert sorted(det.classes.tolist()) == [0, 1]


def test_empty_and_max_det():
    assert len(postprocess(_raw([(5, 5, 2, 2, 0.01)]), conf=0.25, iou=0.5)) == 0
    rows = [(i * 30 + 10, 10, 8, 8, 0.5 + i / 100) for i in range(10)]  # ten disjoint boxes
    det = postprocess(_raw(rows), conf=0.25, iou=0.5, max_det=3)
    assert len(det) == 3
    assert det.scores == pytest.approx([0.59, 0.58, 0.57])


def test_deployed_reads_the_deploy_section_and_maps_boxes_back():
    deploy = DeploySettings(conf=0.5, iou=0.4, max_det=7, agnostic=True)
    post = Postprocess.deployed(deploy)
    assert (post.conf, post.iou, post.max_det, post.multi_label, post.agnostic) == (0.5, 0.4, 7, False, True)
    assert Postprocess.deployed(deploy, conf=0.001).conf == 0.001
    raw = _raw([(50, 50, 20, 20, 0.9, 0.1), (51, 50, 20, 20, 0.1, 0.8)])
    assert len(post(raw)) == 1  # agnostic: the class-1 duplicate goes
    lb = Letterbox(new_w=100, new_h=50, pad_x=0, pad_y=25, orig_w=200, orig_h=100)  # scale 0.5, pad_y 25
    assert post(raw, lb).boxes[0] == pytest.approx([80, 30, 120, 70])


def test_the_scoring_settings_have_one_home():
    from edgeproof.config import parse_params
    from edgeproof.runtime.postprocess import Postprocess
    from edgeproof.runtime.scoring import ScoringSettings
    from edgeproof.settings import SettingsError

    assert parse_params({}).evaluate.scoring == ScoringSettings()  # params.yaml's defaults are the object's
    ev = parse_params({"evaluate": {"conf": 0.01, "iou": 0.6, "max_det": 100, "multi_label": False}}).evaluate
    assert ev.scoring == ScoringSettings(conf=0.01, iou=0.6, max_det=100, multi_label=False)
    assert Postprocess.scoring(ev.scoring) == Postprocess(conf=0.01, iou=0.6, max_det=100, multi_label=False)
    with pytest.raises(SettingsError, match=r"deploy.json: map.max_det"):
        ScoringSettings.parse({"conf": 0.001, "iou": 0.7, "max_det": 0, "multi_label": True}, "deploy.json: map")
