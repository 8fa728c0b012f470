"""The per-frame steps written for fewer passes give the same bytes as their plain formulas.

The letterbox writes each canvas byte once, the float input is converted in one pass, a single canvas
is the batch without a copy, and the box maps and IoU use fewer numpy calls (``docs/runtime.md``: the
steps after the model run on cold caches, where each call costs several microseconds). Each is held
here to the plain formula it replaced, on random sizes and on boxes with NaN, infinite and zero
coordinates planted: byte for byte, except the box map back to the original image, whose clip may
turn -0.0 into +0.0 (equal values; numpy 2 clips with an array bound that way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproof.runtime import preprocess
from edgeproof.runtime.postprocess import box_iou, xywh_to_xyxy
from edgeproof.runtime.preprocess import PAD_VALUE, boxes_to_original, letterbox, letterbox_geometry, to_input


def _same_bytes(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


def _plain_letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    resized = image
    for step_h, step_w in preprocess.resize_steps(image.shape[0], image.shape[1], size):
        resized = preprocess._resize(resized, step_w, step_h)
    lb = letterbox_geometry(image.shape[0], image.shape[1], size)
    canvas = np.full((*size, 3), PAD_VALUE, np.uint8)
    canvas[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w] = resized
    return canvas


def _plain_iou(a: np.ndarray, b: np.ndarray, crowd: np.ndarray | None) -> np.ndarray:
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    areas = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    union = area + areas - inter
    if crowd is not None and crowd.any():
        union = np.where(crowd[None, :], area, union)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


sides = st.integers(1, 90)


@settings(max_examples=60, deadline=None)
@given(h=sides, w=sides, out_h=st.integers(8, 64), out_w=st.integers(8, 64), seed=st.integers(0, 2**16))
def test_the_letterbox_is_the_padded_paste(h: int, w: int, out_h: int, out_w: int, seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    canvas, _ = letterbox(image, (out_h, out_w))
    _same_bytes(canvas, _plain_letterbox(image, (out_h, out_w)))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), h=sides, w=sides, seed=st.integers(0, 2**16))
def test_the_float_input_is_the_stacked_division(n: int, h: int, w: int, seed: int) -> None:
    images = list(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))
    plain = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
    out = to_input(images)
    assert out.flags.c_contiguous
    _same_bytes(out, plain)


@pytest.mark.parametrize("other", [(1, 23, 3), (17, 1, 3), (16, 23, 3), (17, 23, 1)])
def test_the_float_input_refuses_a_batch_of_several_sizes(other: tuple[int, int, int]) -> None:
    # (1, 23, 3) would broadcast into a (17, 23, 3) slot: refused, not smeared over the batch
    with pytest.raises(ValueError, match="image 1 is"):
        to_input([np.zeros((17, 23, 3), np.uint8), np.zeros(other, np.uint8)])
    with pytest.raises(ValueError, match="at least one image"):
        to_input([])


def test_a_single_canvas_is_the_batch_and_several_are_stacked(fixed_detector_factory, tmp_path: Path) -> None:
    import onnx

    from edgeproof.runtime.detector import Detector
    from edgeproof.training.graph import uint8_nhwc_input

    model = onnx.load(str(fixed_detector_factory(np.zeros((5, 2), np.float32))))
    uint8_nhwc_input(model)
    onnx.save(model, str(tmp_path / "u8.onnx"))
    detector = Detector(tmp_path / "u8.onnx")
    assert detector.nhwc_uint8
    images = [np.random.default_rng(i).integers(0, 256, (40 + i, 50, 3), dtype=np.uint8) for i in range(3)]
    one, _ = detector.preprocess(images[:1])
    _same_bytes(one, letterbox(images[0], detector.input_size)[0][None])
    several, _ = detector.preprocess(images)
    _same_bytes(several, np.stack([letterbox(im, detector.input_size)[0] for im in images]))


coord = st.one_of(st.floats(-50, 400, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]))
boxes = st.integers(0, 6).flatmap(lambda n: st.lists(st.lists(coord, min_size=4, max_size=4), min_size=n, max_size=n))
dtypes = st.sampled_from([np.float32, np.float64])


def _array(rows: list[list[float]], dtype: type = np.float32) -> np.ndarray:
    return np.asarray(rows, dtype).reshape(-1, 4)


@settings(max_examples=200, deadline=None)
@given(a=boxes, b=boxes, dtype=dtypes, flags=st.lists(st.booleans(), min_size=6, max_size=6))
def test_iou_is_the_plain_formula_byte_for_byte(a: list, b: list, dtype: type, flags: list[bool]) -> None:
    a_, b_ = _array(a, dtype), _array(b, dtype)
    crowd = np.asarray(flags[: len(b_)], bool)
    with np.errstate(all="ignore"):
        _same_bytes(box_iou(a_, b_), _plain_iou(a_, b_, None))
        _same_bytes(box_iou(a_, b_, crowd), _plain_iou(a_, b_, crowd))


@settings(max_examples=100, deadline=None)
@given(rows=boxes, dtype=dtypes, pad=st.tuples(st.integers(0, 40), st.integers(0, 40)), orig=st.tuples(sides, sides))
def test_box_maps_are_the_plain_formulas(rows: list, dtype: type, pad: tuple[int, int], orig: tuple[int, int]) -> None:
    xywh = _array(rows, dtype)
    with np.errstate(all="ignore"):
        half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
        plain = np.stack([xywh[:, 0] - half_w, xywh[:, 1] - half_h, xywh[:, 0] + half_w, xywh[:, 1] + half_h], 1)
        _same_bytes(xywh_to_xyxy(xywh), plain)
        lb = letterbox_geometry(orig[0], orig[1], (64, 64))
        lb = type(lb)(lb.new_w, lb.new_h, pad[0], pad[1], lb.orig_w, lb.orig_h)
        out = plain.astype(np.float64)
        out[:, [0, 2]] = ((out[:, [0, 2]] - lb.pad_x) / lb.scale_x).clip(0, lb.orig_w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - lb.pad_y) / lb.scale_y).clip(0, lb.orig_h)
        mapped = boxes_to_original(plain, lb)
        assert mapped.dtype == np.float32
        np.testing.assert_array_equal(mapped, out.astype(np.float32))  # equal values, NaN where NaN
