"""The one image decoder: the data stage, the runtime, evaluation and the device side all read pixels here.

Python 3.8 with numpy and Pillow only (the device side), so every reader gets the same bytes:

- EXIF orientation applied (the frame ultralytics' cv2 reads and COCO annotators see);
- converted to 8-bit RGB the way OpenCV's ``imread(IMREAD_COLOR)`` does, which ultralytics trains
  on: 16-bit samples keep their high byte (``>> 8``; Pillow's own ``convert`` clips them to 255, so
  a 16-bit PNG came out almost white), alpha is dropped without compositing, grayscale and palette
  images are expanded;
- refused before decoding when the header declares more than ``max_pixels`` pixels, with one line
  naming the file: a 17 KB PNG can declare 144 megapixels and take gigabytes to decode.

``reduce_to`` opts into decoding straight to size: a JPEG larger than needed is decoded by libjpeg
at 1/2, 1/4 or 1/8 scale (Pillow's ``draft``, the same DCT scaling as OpenCV's
``IMREAD_REDUCED_*``), never below the requested size. That is faster and lighter, but the pixels
differ from a full decode followed by the letterbox resize, so it is off unless asked for.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Pillow's own default (``Image.MAX_IMAGE_PIXELS``, ~89.5 MP, e.g. 9459 x 9459), and a fixed limit: every
#: reader (evaluation, optimize, the device, ``edgeproof detect``) decodes with it, and
#: ``data.max_image_pixels`` may only lower it, so whatever the data stage accepts, every reader decodes.
#: A larger photo (a 108 MP phone mode) must be downscaled first.
DEFAULT_MAX_PIXELS = 89_478_485

# Image.open runs one at a time with Pillow's DecompressionBombWarning silenced (warnings filters are
# process-wide): open_image's own check follows at once and says it in one line naming the file.
_OPEN_LOCK = threading.Lock()

_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_ORIENTATION_TAG = 0x0112


class ImageTooLarge(ValueError):
    """The header declares more pixels than the limit; nothing was decoded."""


def orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or malformed (readers ignore it too)."""
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a malformed EXIF block
        return 1
    return value if 1 <= value <= 8 else 1


def _too_large(path: Union[Path, str], pixels: str, max_pixels: int) -> str:
    if max_pixels < DEFAULT_MAX_PIXELS:  # lowered by data.max_image_pixels
        why = f"a decompression bomb, or raise data.max_image_pixels, up to {DEFAULT_MAX_PIXELS}"
    else:
        why = (
            "a decompression bomb, or a photo larger than any edgeproof reader decodes: the limit is fixed, "
            "so downscale it, with its pixel boxes"
        )
    return f"{path}: {pixels} pixels is over the limit of {max_pixels} ({why}); not decoded"


def _open(path: Union[Path, str]) -> Image.Image:
    """``Image.open(path)`` without Pillow's DecompressionBombWarning (see ``_OPEN_LOCK``)."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def check_pixels(path: Union[Path, str], width: int, height: int, max_pixels: int) -> None:
    """Raise :class:`ImageTooLarge` naming ``path`` when ``width * height`` exceeds ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageTooLarge(_too_large(path, f"{width}x{height} = {width * height}", max_pixels))


def open_image(path: Union[Path, str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``path`` (header only) and check its pixel count; the caller closes it.

    Raises ``FileNotFoundError``, :class:`ImageTooLarge`, or ``ValueError`` for a file that is not an
    image; each message names the file and is one line.
    """
    try:
        im = _open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit: Pillow refuses at open
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLarge(_too_large(path, found.group(1) if found else "more", max_pixels)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError) as exc:
        # ImportError: ultralytics' process-wide Image.open patch looking for a HEIF plugin
        raise ValueError(f"{path}: unreadable image ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    try:
        check_pixels(path, im.size[0], im.size[1], max_pixels)
    except ImageTooLarge:
        im.close()
        raise
    return im


def to_rgb(im: Image.Image, source_format: Optional[str] = None) -> Image.Image:
    """``im`` as 8-bit RGB, the way OpenCV's ``IMREAD_COLOR`` converts (see the module docstring)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # a 16-bit PNG opens as "I" in older Pillow, as "I;16" in newer: both are 16-bit samples
        sixteen = im.mode.startswith("I;16") or (source_format or im.format) == "PNG"
        arr = np.asarray(im).astype(np.uint32) if im.mode != "I" else np.asarray(im).astype(np.int64).clip(0)
        im = Image.fromarray((arr >> (8 if sixteen else 24)).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA").convert("RGB")  # drop alpha without compositing, like cv2
    return im if im.mode == "RGB" else im.convert("RGB")


def reduced_request(width: int, height: int, reduce_to: Tuple[int, int]) -> Tuple[int, int]:
    """The size to ask libjpeg for so the decoded image still covers ``reduce_to``.

    ``reduce_to`` is the model input (height, width): the letterbox first scales the long side to
    ``max(reduce_to)``, so the decoded long side must not fall below it. The aspect ratio is kept,
    so the stored frame of an EXIF-rotated image needs no special case.
    """
    r = min(1.0, max(reduce_to) / max(width, height))
    return max(1, math.ceil(width * r)), max(1, math.ceil(height * r))


def decode(
    path: Union[Path, str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reduce_to: Optional[Tuple[int, int]] = None,
) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Decode ``path`` to an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied.

    Returns the pixels and the full displayed size ``(height, width)``: with ``reduce_to`` (the
    model input's height, width) a large JPEG may come back smaller than that, and boxes found on it
    belong to the full-size frame. Errors name the file in one line (see :func:`open_image`).
    """
    im = open_image(path, max_pixels)
    try:
        fmt, (width, height) = im.format, im.size
        if reduce_to is not None and fmt == "JPEG":
            im.draft(im.mode, reduced_request(width, height, reduce_to))
        im.load()
        turn = orientation(im)  # after load: a PNG may carry its EXIF after the pixels
        pixels = np.asarray(to_rgb(ImageOps.exif_transpose(im) if turn != 1 else im, fmt))
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ValueError(f"{path}: unreadable image ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    finally:
        im.close()
    full = (width, height) if turn in _TRANSPOSED else (height, width)
    return pixels, full


def load_image(path: Union[Path, str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied (full size)."""
    return decode(path, max_pixels)[0]
