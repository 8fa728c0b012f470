"""Image loading and letterboxing, with the exact inverse for mapping boxes back.

The letterbox matches ultralytics' (scale to fit, centre, pad with grey 114, rounding the pads the
same way) so the ONNX model sees what it saw in training. Loading honours EXIF orientation, the
way ultralytics and COCO annotators see the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How an original image was placed into the model input: ``input = original * scale + pad``."""

    scale: float
    pad_x: int
    pad_y: int
    orig_w: int
    orig_h: int


def load_image(path: Path | str) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: unreadable image ({exc})") from None


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) to fit ``size`` = (height, width) keeping aspect, pad the rest."""
    h, w = image.shape[:2]
    out_h, out_w = size
    scale = min(out_h / h, out_w / w)
    new_w, new_h = round(w * scale), round(h * scale)
    if (new_w, new_h) != (w, h):
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    else:
        resized = image
    dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
    left, top = round(dw - 0.1), round(dh - 0.1)
    canvas = np.full((out_h, out_w, 3), pad_value, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, Letterbox(scale=scale, pad_x=left, pad_y=top, orig_w=w, orig_h=h)


def to_input(images: list[np.ndarray]) -> np.ndarray:
    """Stack letterboxed HWC uint8 images into the model's NCHW float32 input in [0, 1]."""
    batch = np.stack(images).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255.0)


def boxes_to_original(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map ``(n, 4)`` xyxy boxes from model-input pixels back to the original image, clipped to it."""
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - lb.pad_x) / lb.scale
    out[:, [1, 3]] = (out[:, [1, 3]] - lb.pad_y) / lb.scale
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, lb.orig_w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, lb.orig_h)
    return out


def boxes_to_input(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """The forward map of :func:`boxes_to_original` (original pixels -> model-input pixels)."""
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = out[:, [0, 2]] * lb.scale + lb.pad_x
    out[:, [1, 3]] = out[:, [1, 3]] * lb.scale + lb.pad_y
    return out
