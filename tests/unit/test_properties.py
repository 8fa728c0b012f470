"""Property tests (hypothesis): annotation parsers, letterbox and its inverse, decode and NMS.

Each property holds for every input hypothesis can build, not just for the examples of the unit tests.
The runtime functions are used through their public API only.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeproof.data.coco import load_coco
from edgeproof.data.jsonstream import iter_members
from edgeproof.data.params import CocoParams, VocParams
from edgeproof.data.report import Problems
from edgeproof.data.voc import load_voc
from edgeproof.data.yolo import read_labels
from edgeproof.runtime.postprocess import Postprocess, box_iou, nms
from edgeproof.runtime.preprocess import boxes_to_input, boxes_to_original, letterbox, letterbox_geometry
from tests.unit.test_nms import reference_nms

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- annotation parsers -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(
    doc=st.dictionaries(st.text(max_size=6), json_values, max_size=6),
    chunk=st.integers(1, 64),
    arrays=st.sets(st.sampled_from(["a", "images", ""]), max_size=2),
)
def test_streamed_json_members_equal_json_loads(doc, chunk, arrays):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.json"
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        got = list(iter_members(path, arrays, chunk=chunk))
    expected = []
    for key, value in doc.items():  # json.loads keeps the last of duplicate keys; dicts have none here
        if key in arrays and isinstance(value, list):
            expected += [(key, v) for v in value]
        else:
            expected.append((key, value))
    assert got == expected


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7])
def test_a_number_split_by_a_chunk_boundary_is_read_whole(tmp_path, chunk):
    """Found by the property above: ``12`` | ``.5`` across two chunks was read as 12, then failed."""
    doc = {"a": 0.0, "images": [12.5, -1e-05, 123456789], "b": [1.25e3, {"c": 0.5}], "d": 7}
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    got = list(iter_members(path, {"images"}, chunk=chunk))
    assert got == [("a", 0.0), ("images", 12.5), ("images", -1e-05), ("images", 123456789), ("b", doc["b"]), ("d", 7)]


label_rows = st.lists(
    st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=9).map(
            lambda v: " ".join(repr(x) for x in v)
        ),
        st.text(alphabet="0123456789.- eEnaif\t", max_size=30),
    ),
    max_size=8,
)


@SETTINGS
@given(rows=label_rows, n_classes=st.integers(1, 5))
def test_yolo_labels_never_raise_and_keep_only_usable_boxes(rows, n_classes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.txt"
        path.write_text("\n".join(rows))
        problems = Problems()
        boxes = read_labels(path, n_classes, "x.txt", problems)
    for box in boxes:
        assert 1 <= box.category_id <= n_classes and box.normalized
        assert all(math.isfinite(v) for v in box.bbox) and box.bbox[2] > 0 and box.bbox[3] > 0
    assert len(boxes) + sum(problems.counts.values()) <= sum(1 for r in rows if r.strip())


number = st.one_of(st.floats(-50, 200), st.integers(-50, 200))
annotation = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**6),
        "image_id": st.one_of(st.sampled_from([1, 2]), json_scalars),
        "category_id": st.one_of(st.sampled_from([1, 2]), json_scalars),
        "bbox": st.one_of(st.lists(number, min_size=4, max_size=4), json_values),
        "iscrowd": st.sampled_from([0, 1]),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anns=st.lists(annotation, max_size=8))
def test_coco_loader_reports_bad_entries_and_keeps_sane_boxes(anns):
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        (repo / "imgs").mkdir()
        images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}, {"id": 2, "file_name": "b.jpg"}]
        cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
        (repo / "gt.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
        problems = Problems()
        ds = load_coco(CocoParams(images="imgs", annotations="gt.json"), repo, problems)
        ds.fill and ds.fill(range(len(ds.images)))
    kept = [b for im in ds.images for b in im.boxes]
    for box in kept:
        assert box.category_id in (1, 2) and all(math.isfinite(v) for v in box.bbox)
    assert len(kept) + sum(problems.counts.values()) >= len(anns)  # every entry is kept or reported


corner_text = st.one_of(
    st.integers(-5, 120).map(str), st.floats(-5, 120).map(repr), st.sampled_from(["", "x", "nan", "inf"])
)
voc_object = st.tuples(st.sampled_from(["cat", "dog"]), st.lists(corner_text, min_size=4, max_size=4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects=st.lists(voc_object, min_size=1, max_size=6))
def test_voc_boxes_are_the_corners_converted_or_reported(objects):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "voc"
        (root / "Annotations").mkdir(parents=True)
        (root / "JPEGImages").mkdir()
        body = "".join(
            f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{c[0]}</xmin><ymin>{c[1]}</ymin>"
            f"<xmax>{c[2]}</xmax><ymax>{c[3]}</ymax></bndbox></object>"
            for n, c in objects
        )
        (root / "Annotations" / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{body}</annotation>")
        problems = Problems()
        ds = load_voc(VocParams(root="voc"), Path(tmp), problems)
    got = [b.bbox for b in ds.images[0].boxes]
    expected = []
    for _, corners in objects:
        try:
            x0, y0, x1, y1 = (float(c) for c in corners)
        except ValueError:
            continue
        w, h = x1 - x0 + 1, y1 - y0 + 1
        if all(map(math.isfinite, (x0, y0, x1, y1))) and w > 0 and h > 0:
            expected.append((x0 - 1, y0 - 1, w, h))
    assert got == expected
    assert len(got) + sum(problems.counts.values()) == len(objects)


# --- letterbox and its inverse ----------------------------------------------------------------------

sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))
inputs = st.tuples(st.sampled_from([32, 64, 256, 320, 640]), st.sampled_from([32, 64, 256, 320, 640]))


@SETTINGS
@given(hw=sizes, size=inputs)
def test_letterbox_geometry_fits_the_input(hw, size):
    lb = letterbox_geometry(hw[0], hw[1], size)
    assert 1 <= lb.new_h <= size[0] and 1 <= lb.new_w <= size[1]
    assert lb.pad_x >= 0 and lb.pad_x + lb.new_w <= size[1] and lb.pad_y >= 0 and lb.pad_y + lb.new_h <= size[0]
    assert (lb.orig_w, lb.orig_h) == (hw[1], hw[0])


@SETTINGS
@given(hw=sizes, size=inputs, corners=st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_boxes_round_trip_through_the_letterbox(hw, size, corners):
    h, w = hw
    lb = letterbox_geometry(h, w, size)
    x0, x1 = sorted(corners[:2])
    y0, y1 = sorted(corners[2:])
    box = np.array([[x0 * w, y0 * h, x1 * w, y1 * h]], np.float32)
    back = boxes_to_original(boxes_to_input(box, lb), lb)
    tol = 1e-3 * max(w, h) + 1e-2  # float32 through a scale and a shift
    np.testing.assert_allclose(back, box, atol=tol)


@SETTINGS
@given(hw=sizes, size=inputs, raw=st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4))
def test_mapped_back_boxes_are_always_inside_the_image(hw, size, raw):
    lb = letterbox_geometry(hw[0], hw[1], size)
    out = boxes_to_original(np.array([raw], np.float32), lb)
    assert (out[:, [0, 2]] >= 0).all() and (out[:, [0, 2]] <= hw[1]).all()
    assert (out[:, [1, 3]] >= 0).all() and (out[:, [1, 3]] <= hw[0]).all()


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 120),
    w=st.integers(1, 120),
    size=st.sampled_from([(32, 32), (64, 64), (64, 32)]),
    seed=st.integers(0, 99),
)
def test_letterboxed_pixels_sit_where_the_geometry_says(h, w, size, seed):
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    canvas, lb = letterbox(image, size)
    assert canvas.shape == (*size, 3) and canvas.dtype == np.uint8
    mask = np.ones(size, bool)
    mask[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w] = False
    assert (canvas[mask] == 114).all()  # everything outside the pasted image is padding


# --- decode and NMS ---------------------------------------------------------------------------------


@st.composite
def box_sets(draw, max_n=40):
    n = draw(st.integers(0, max_n))
    xy = draw(
        st.lists(
            st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(0.5, 60), st.floats(0.5, 60)),
            min_size=n,
            max_size=n,
        )
    )
    scores = draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n))
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in xy], np.float32).reshape(-1, 4)
    return boxes, np.array(scores, np.float32)


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return box_iou(box[None], boxes)[0]


@SETTINGS
@given(data=box_sets(), iou=st.floats(0.05, 0.95))
def test_nms_keeps_a_non_overlapping_greedy_cover(data, iou):
    boxes, scores = data
    keep = nms(boxes, scores, iou)
    assert len(set(keep.tolist())) == len(keep)
    assert (np.diff(scores[keep]) <= 0).all()  # highest score first
    for i, k in enumerate(keep):
        if i + 1 < len(keep):
            assert (_iou_one(boxes[k], boxes[keep[i + 1 :]]) <= iou).all()
    dropped = np.setdiff1d(np.arange(len(boxes)), keep)
    for d in dropped:  # every dropped box overlaps a kept one that scores at least as high
        over = _iou_one(boxes[d], boxes[keep]) > iou
        assert over.any() and (scores[keep][over] >= scores[d]).any()


@SETTINGS
@given(data=box_sets(max_n=80), iou=st.floats(0.05, 0.95), max_keep=st.one_of(st.none(), st.integers(1, 20)))
def test_runtime_nms_equals_the_greedy_reference(data, iou, max_keep):
    boxes, scores = data
    np.testing.assert_array_equal(nms(boxes, scores, iou, max_keep), reference_nms(boxes, scores, iou, max_keep))


@SETTINGS
@given(
    nc=st.integers(1, 4),
    n=st.integers(0, 60),
    seed=st.integers(0, 10_000),
    conf=st.floats(0.0, 0.9),
    iou=st.floats(0.1, 0.9),
    max_det=st.integers(1, 50),
    multi_label=st.booleans(),
)
def test_decode_respects_conf_classes_max_det_and_class_aware_nms(nc, n, seed, conf, iou, max_det, multi_label):
    rng = np.random.default_rng(seed)
    pred = np.concatenate([rng.uniform(5, 100, (2, n)), rng.uniform(1, 50, (2, n)), rng.uniform(0, 1, (nc, n))])
    det = Postprocess(conf, iou, max_det=max_det, multi_label=multi_label)(pred.astype(np.float32))
    assert len(det) <= max_det and (det.scores > conf).all()
    assert ((det.classes >= 0) & (det.classes < nc)).all()
    assert (det.boxes[:, 2] >= det.boxes[:, 0]).all() and (det.boxes[:, 3] >= det.boxes[:, 1]).all()
    for c in np.unique(det.classes):
        same = det.boxes[det.classes == c]
        for i in range(len(same) - 1):
            assert (_iou_one(same[i], same[i + 1 :]) <= iou + 1e-6).all()


def _argmax_everywhere(pred: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The single-label picks the way they were first written: argmax over every anchor, then conf."""
    scores_all = pred[4:].T
    classes = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(scores_all.shape[0]), classes]
    rows = np.nonzero(scores > conf)[0]
    finite = np.isfinite(scores[rows])
    return rows[finite], scores[rows][finite], classes[rows][finite]


@SETTINGS
@given(
    nc=st.integers(1, 5),
    n=st.integers(1, 60),
    seed=st.integers(0, 10_000),
    conf=st.sampled_from([0.0, 0.25, 0.5]),
    special=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.5, 0.25]), max_size=8),
)
def test_single_label_decode_picks_what_an_argmax_over_every_anchor_picks(nc, n, seed, conf, special):
    """Scores on a coarse grid (ties between classes), with NaN, inf and exactly-conf values planted."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, (nc, n)) / 4.0
    for value in special:
        scores[rng.integers(nc), rng.integers(n)] = value
    pred = np.concatenate([rng.uniform(5, 100, (2, n)), rng.uniform(1, 50, (2, n)), scores]).astype(np.float32)
    rows, want_scores, want_classes = _argmax_everywhere(pred, conf)
    det = Postprocess(conf, iou=1.0, max_det=10_000)(pred)  # iou 1: NMS keeps every distinct box
    order = np.argsort(-want_scores, kind="stable")
    np.testing.assert_array_equal(det.scores, want_scores[order])
    np.testing.assert_array_equal(det.classes, want_classes[order])
    np.testing.assert_array_equal(det.boxes[:, 0], pred[0, rows][order] - pred[2, rows][order] / 2)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_decode_of_non_finite_scores_never_emits_them(bad):
    pred = np.array([[10, 20], [10, 20], [5, 5], [5, 5], [0.9, bad]], np.float32)
    det = Postprocess(0.25, 0.7)(pred)
    assert np.isfinite(det.scores).all()


def test_a_huge_float_id_is_reported_not_an_overflow(tmp_path):
    """Found by the COCO property: ``category_id: 1e300`` is an integer-valued float beyond 64 bits."""
    (tmp_path / "imgs").mkdir()
    images = [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1e300, "bbox": [1, 1, 2, 2]}]
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    problems = Problems()
    load_coco(CocoParams(images="imgs", annotations="gt.json"), tmp_path, problems)
    # the field is named, not blamed on the box (first-contact review F4)
    assert problems.counts == {"annotation_unreadable": 1}
    assert "category_id 1e+300 is out of the 64-bit range" in problems.examples["annotation_unreadable"][0]
