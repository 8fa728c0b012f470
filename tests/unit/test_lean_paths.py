"""The per-frame steps written for fewer passes give the same bits as their plain formulas.

The letterbox writes each canvas byte once, the float input is converted in one pass, and the box
maps and IoU use fewer numpy calls (``docs/runtime.md``: the steps after the model run on cold caches,
where each call costs several microseconds). Each is held here to the plain formula it replaced,
bit for bit, on random sizes and boxes with NaN and infinite coordinates planted.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproof.runtime.postprocess import box_iou, xywh_to_xyxy
from edgeproof.runtime.preprocess import PAD_VALUE, boxes_to_original, letterbox, letterbox_geometry, to_input


def _plain_letterbox_canvas(image: np.ndarray, resized: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    lb = letterbox_geometry(image.shape[0], image.shape[1], size)
    canvas = np.full((*size, 3), PAD_VALUE, np.uint8)
    canvas[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w] = resized
    return canvas


def _plain_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    areas = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


sides = st.integers(1, 90)


@settings(max_examples=60, deadline=None)
@given(h=sides, w=sides, out_h=st.integers(8, 64), out_w=st.integers(8, 64), seed=st.integers(0, 2**16))
def test_the_letterbox_canvas_is_the_padded_paste(h: int, w: int, out_h: int, out_w: int, seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    canvas, lb = letterbox(image, (out_h, out_w))
    inner = canvas[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w]
    np.testing.assert_array_equal(canvas, _plain_letterbox_canvas(image, inner, (out_h, out_w)))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), h=sides, w=sides, seed=st.integers(0, 2**16))
def test_the_float_input_is_the_stacked_division(n: int, h: int, w: int, seed: int) -> None:
    images = list(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))
    plain = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
    out = to_input(images)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, plain)


coord = st.one_of(st.floats(-50, 400, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))
boxes = st.integers(0, 6).flatmap(lambda n: st.lists(st.lists(coord, min_size=4, max_size=4), min_size=n, max_size=n))


def _array(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, np.float32).reshape(-1, 4)


@settings(max_examples=200, deadline=None)
@given(a=boxes, b=boxes)
def test_iou_is_the_plain_formula_bit_for_bit(a: list[list[float]], b: list[list[float]]) -> None:
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(box_iou(_array(a), _array(b)), _plain_iou(_array(a), _array(b)))


@settings(max_examples=100, deadline=None)
@given(rows=boxes, pad=st.tuples(st.integers(0, 40), st.integers(0, 40)), orig=st.tuples(sides, sides))
def test_box_maps_are_the_plain_formulas_bit_for_bit(
    rows: list[list[float]], pad: tuple[int, int], orig: tuple[int, int]
) -> None:
    xywh = _array(rows)
    with np.errstate(all="ignore"):
        half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
        plain = np.stack([xywh[:, 0] - half_w, xywh[:, 1] - half_h, xywh[:, 0] + half_w, xywh[:, 1] + half_h], 1)
        np.testing.assert_array_equal(xywh_to_xyxy(xywh), plain)
        lb = letterbox_geometry(orig[0], orig[1], (64, 64))
        lb = type(lb)(lb.new_w, lb.new_h, pad[0], pad[1], lb.orig_w, lb.orig_h)
        out = plain.astype(np.float64)
        out[:, [0, 2]] = ((out[:, [0, 2]] - lb.pad_x) / lb.scale_x).clip(0, lb.orig_w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - lb.pad_y) / lb.scale_y).clip(0, lb.orig_h)
        np.testing.assert_array_equal(boxes_to_original(plain, lb), out.astype(np.float32))
