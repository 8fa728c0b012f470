"""Image loading and letterboxing, with the exact inverse for mapping boxes back.

The letterbox reproduces ultralytics' validation pipeline (the pixels the model was trained and
validated on), not its ``predict`` shortcut:

1. ``BaseDataset.load_image``: long side to ``max(size)``, each side ``ceil``-rounded and clamped,
   ``cv2.resize(..., INTER_LINEAR)`` whether shrinking or enlarging (no INTER_AREA in this version);
2. ``LetterBox(scaleup=False)``: for a square input a no-op resize, for a non-square one a second
   ``round``-ed downscale; then grey (114) padding, ``left = round(dw / 2 - 0.1)`` (the odd pixel
   goes right/bottom).

``resize_bilinear`` is a numpy port of OpenCV's fixed-point ``INTER_LINEAR`` for uint8, so the
edge core needs no OpenCV and still feeds the model the same bytes. Loading honours EXIF
orientation, the way ultralytics and COCO annotators see the image.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, List, Tuple

import numpy as np

from edgeproof.runtime.image import load_image  # noqa: F401 (the one decoder, re-exported for its callers)

PAD_VALUE = 114
_COEF_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE: 11-bit fixed-point interpolation weights


@dataclass(frozen=True)
class Letterbox:
    """How an original image was placed into the model input.

    The ``orig_w`` x ``orig_h`` original was resized to ``new_w`` x ``new_h`` and pasted with its
    top-left corner at ``(pad_x, pad_y)``. In continuous pixel coordinates (image edges map to
    edges, as in the resampling): ``input = original * (scale_x, scale_y) + (pad_x, pad_y)``.
    Side lengths are rounded separately, so ``scale_x`` and ``scale_y`` may differ slightly.
    """

    new_w: int
    new_h: int
    pad_x: int
    pad_y: int
    orig_w: int
    orig_h: int

    @property
    def scale_x(self) -> float:
        """Horizontal factor original -> model input (``new_w / orig_w``)."""
        return self.new_w / self.orig_w

    @property
    def scale_y(self) -> float:
        """Vertical factor original -> model input (``new_h / orig_h``)."""
        return self.new_h / self.orig_h


def resize_steps(h: int, w: int, size: Tuple[int, int]) -> List[Tuple[int, int]]:
    """The ``(height, width)`` after each resize ultralytics' validation loader applies.

    Empty when the image is used as is; the last entry is the size pasted into the input.
    """
    if h < 1 or w < 1:
        raise ValueError(f"empty image: {w}x{h} pixels (width x height), nothing to letterbox")
    out_h, out_w = size
    if out_h < 1 or out_w < 1:
        raise ValueError(f"model input size must be positive, got {out_w}x{out_h} (width x height)")
    steps: List[Tuple[int, int]] = []
    long_side = max(out_h, out_w)
    r = long_side / max(h, w)  # BaseDataset.load_image: long side to imgsz, sides ceil-ed, clamped
    if r != 1:
        h, w = max(min(math.ceil(h * r), long_side), 1), max(min(math.ceil(w * r), long_side), 1)
        steps.append((h, w))
    r = min(out_h / h, out_w / w, 1.0)  # LetterBox(scaleup=False): only a non-square input shrinks
    new_h, new_w = max(round(h * r), 1), max(round(w * r), 1)
    if (new_h, new_w) != (h, w):
        steps.append((new_h, new_w))
    return steps


def letterbox_geometry(h: int, w: int, size: Tuple[int, int]) -> Letterbox:
    """Where an ``h`` x ``w`` image lands in a ``size`` = (height, width) input, without pixels."""
    steps = resize_steps(h, w, size)
    new_h, new_w = steps[-1] if steps else (h, w)
    out_h, out_w = size
    pad_x, pad_y = round((out_w - new_w) / 2 - 0.1), round((out_h - new_h) / 2 - 0.1)
    return Letterbox(new_w=new_w, new_h=new_h, pad_x=pad_x, pad_y=pad_y, orig_w=w, orig_h=h)


def letterbox(image: np.ndarray, size: Tuple[int, int], pad_value: int = PAD_VALUE) -> Tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) uint8 to fit ``size`` = (height, width) keeping aspect, pad the rest.

    The canvas is always a fresh array, never ``image`` itself (even at the input size): the detector hands
    a single canvas to the model as the batch without copying it."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"letterbox expects an (H, W, 3) uint8 image, got shape {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    lb = letterbox_geometry(h, w, size)
    resized = image
    for step_h, step_w in resize_steps(h, w, size):
        resized = _resize(resized, step_w, step_h)
    canvas = np.empty((*size, 3), dtype=np.uint8)
    bottom, right = lb.pad_y + lb.new_h, lb.pad_x + lb.new_w
    # grey only where the image does not land: each byte of the canvas is written once
    canvas[: lb.pad_y] = pad_value
    canvas[bottom:] = pad_value
    canvas[lb.pad_y : bottom, : lb.pad_x] = pad_value
    canvas[lb.pad_y : bottom, right:] = pad_value
    canvas[lb.pad_y : bottom, lb.pad_x : right] = resized
    return canvas, lb


def _taps(n_out: int, n_in: int, clamp_weights: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's linear taps along one axis: source indices ``i0, i1`` and fixed-point weights.

    Pixel centres align (``src = (dst + 0.5) * n_in / n_out - 0.5``, in float32 as OpenCV). Past the
    edges OpenCV zeroes the weight horizontally but only clamps the row index vertically, which
    matters for its rounding; ``clamp_weights`` selects the horizontal behaviour.
    """
    f = ((np.arange(n_out) + 0.5) * (1.0 / (n_out / n_in)) - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.intp)
    t = f - i0.astype(np.float32)
    if clamp_weights:
        t[(i0 < 0) | (i0 >= n_in - 1)] = 0
    i1 = np.clip(i0 + 1, 0, n_in - 1)
    i0 = np.clip(i0, 0, n_in - 1)
    w0 = np.rint((np.float32(1) - t) * _COEF_SCALE).astype(np.int32)
    w1 = np.rint(t * _COEF_SCALE).astype(np.int32)
    return i0, i1, w0, w1


@functools.lru_cache(maxsize=None)  # noqa: UP033 (functools.cache is Python 3.9+)
def _opencv() -> Any | None:
    """OpenCV if this machine has it (optional: the light install is numpy + Pillow)."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """INTER_LINEAR resize: OpenCV when installed (several times faster), else the bit-identical
    numpy implementation :func:`resize_bilinear`."""
    cv2 = _opencv()
    if cv2 is not None:
        return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR)
    return resize_bilinear(image, width, height)


def resize_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an ``(H, W, C)`` uint8 image like ``cv2.resize(image, (width, height), INTER_LINEAR)``.

    Bit-exact with OpenCV's uint8 path (11-bit weights, horizontal pass in exact integers, then
    its vertical rounding ``((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16) + 2) >> 2``).
    Like OpenCV (and unlike Pillow's BILINEAR) it does not low-pass filter when shrinking.
    """
    h, w, c = image.shape
    x0, x1, a0, a1 = _taps(width, w, clamp_weights=True)
    y0, y1, b0, b1 = _taps(height, h, clamp_weights=False)
    channels = np.arange(c)
    ix0, ix1 = (x0[:, None] * c + channels).ravel(), (x1[:, None] * c + channels).ravel()
    a0, a1 = np.repeat(a0, c), np.repeat(a1, c)
    flat = image.reshape(h, w * c)

    def horizontal(rows: np.ndarray) -> np.ndarray:
        return np.take(rows, ix0, axis=1) * a0 + np.take(rows, ix1, axis=1) * a1  # int32

    if 2 * height < h:  # shrinking: interpolate only the rows that are used
        s0, s1 = horizontal(np.take(flat, y0, axis=0)), horizontal(np.take(flat, y1, axis=0))
    else:
        rows = horizontal(flat)
        s0, s1 = np.take(rows, y0, axis=0), np.take(rows, y1, axis=0)
    s0 >>= 4
    s0 *= b0[:, None]
    s0 >>= 16
    s1 >>= 4
    s1 *= b1[:, None]
    s1 >>= 16
    s0 += s1
    s0 += 2
    s0 >>= 2
    return s0.astype(np.uint8).reshape(height, width, c)


def to_input(images: List[np.ndarray]) -> np.ndarray:
    """Stack letterboxed HWC uint8 images into the model's NCHW float32 input in [0, 1]."""
    if not images:
        raise ValueError("to_input needs at least one image")
    h, w, c = images[0].shape
    out = np.empty((len(images), c, h, w), dtype=np.float32)
    for i, image in enumerate(images):  # one conversion pass per image, no stacked copy
        if image.shape != (h, w, c):  # the assignment would broadcast a (1, w, c) image silently
            raise ValueError(f"to_input: image {i} is {image.shape}, image 0 is {(h, w, c)}; one batch, one size")
        out[i] = image.transpose(2, 0, 1)
    out /= np.float32(255.0)
    return out


def as_float_nchw(batch: np.ndarray) -> np.ndarray:
    """A model input batch as float32 NCHW in [0, 1]: letterboxed NHWC uint8 pixels are converted exactly as
    :func:`to_input` does; a float batch is returned as is."""
    if batch.dtype == np.uint8 and batch.ndim == 4 and batch.shape[3] == 3:
        return to_input(list(batch))
    return batch


def boxes_to_original(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map ``(n, 4)`` xyxy boxes from model-input pixels back to the original image, clipped to it."""
    out = boxes.astype(np.float64, copy=True)
    out -= (lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y)
    out /= (lb.scale_x, lb.scale_y, lb.scale_x, lb.scale_y)
    np.clip(out, 0, (lb.orig_w, lb.orig_h, lb.orig_w, lb.orig_h), out=out)
    return out.astype(np.float32)


def boxes_to_input(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """The forward map of :func:`boxes_to_original` (original pixels -> model-input pixels)."""
    out = boxes.astype(np.float64, copy=True)
    out[:, [0, 2]] = out[:, [0, 2]] * lb.scale_x + lb.pad_x
    out[:, [1, 3]] = out[:, [1, 3]] * lb.scale_y + lb.pad_y
    return out.astype(np.float32)
