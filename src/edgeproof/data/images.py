"""Check one user image and place it in the prepared dataset without ever writing to the original.

An image that every reader sees the same way (a complete RGB JPEG or PNG without EXIF rotation) is
hard-linked (or copied). Anything else gets a normalised copy, saved as PNG so no pixel changes:
EXIF orientation applied (the frame the evaluation and ultralytics' cv2 reads see), converted to
RGB (grayscale, palette, 16-bit, CMYK, alpha), or a JPEG whose file does not end with its end marker
(bytes after the image, as in a motion photo) re-encoded: ultralytics would otherwise "restore" that
one by rewriting the file, i.e. the DVC output. Those bytes are not part of the image, so they are no
problem; a JPEG that ends before its end marker is unreadable (a file cut short and one missing only the
marker cannot be told apart: with the marker appended, half an image decodes without an error).

Pixels come from the one decoder, :mod:`edgeproof.runtime.image`, that evaluation and the device
use too: a normalised copy holds exactly what they would decode from the original, and an image
over ``data.max_image_pixels`` is refused from its header, before any decoding.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from edgeproof.io import atomic_path
from edgeproof.runtime.image import DEFAULT_MAX_PIXELS, ImageTooLarge, decode, open_image, orientation

MIN_SIDE = 10  # ultralytics rejects smaller images
_TRANSPOSED = {5, 6, 7, 8}  # orientations that swap width and height
_LINKABLE = {"JPEG", "PNG"}

Box = tuple[float, float, float, float]


class UnreadableImage(Exception):
    """The file is not a decodable image."""


class TooLarge(UnreadableImage):
    """The header declares more pixels than ``data.max_image_pixels``; not decoded."""


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect` found: the displayed size and why (if at all) the file needs a normalised copy."""

    width: int  # in the displayed (EXIF-applied) frame
    height: int
    stored_width: int  # as the pixels are stored in the file
    stored_height: int
    orientation: int
    format: str
    reason: str | None  # None: the file can be used as is
    repaired: bool = False  # a damaged JPEG that decodes: counts as a problem
    pixels: str = ""  # digest of the decoded pixels (see :func:`pixel_digest`): the same image, whatever its metadata


def _jpeg_ends_cleanly(path: Path) -> bool:
    """Whether the file's last two bytes are the JPEG end marker: ultralytics' own test (it rewrites a file
    that fails it), so such a file is never linked, whatever follows the image."""
    with path.open("rb") as fh:
        fh.seek(-2, os.SEEK_END)
        return fh.read() == b"\xff\xd9"


def jpeg_stream_end(data: bytes) -> int | None:
    """Offset just past the end marker (EOI) of the JPEG stream ``data`` starts with; None when the data
    ends first (or is not a JPEG).

    Walks the marker segments, so an EOI inside one (an EXIF thumbnail) is skipped; in entropy-coded data
    0xFF appears only stuffed (``FF00``), as a restart marker (``FFD0``-``FFD7``) or as fill, so the next
    other marker there is a real one. Bytes after the EOI (a motion photo's video) are not the image's.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:  # entropy-coded data: on to the next 0xFF
            i = data.find(b"\xff", i)
            if i < 0:
                return None
            continue
        marker = data[i + 1]
        if marker == 0xD9:
            return i + 2
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # stuffing, TEM, restart: no length
            i += 2
        elif i + 3 >= n:
            return None
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _unreadable(path: Path, exc: BaseException) -> UnreadableImage:
    """The error for an image that does not decode; a JPEG that stops before its end marker says so."""
    text = str(exc) or type(exc).__name__
    try:
        data = path.read_bytes()
    except OSError:
        return UnreadableImage(text)
    if data.startswith(b"\xff\xd8") and jpeg_stream_end(data) is None:
        text += (
            " (the JPEG data ends without its end marker: cut short, or only the 2-byte marker missing, "
            "which cannot be told apart; not used)"
        )
    return UnreadableImage(text)


def pixel_digest(im: Image.Image, stored: tuple[int, int]) -> str:
    """A digest of the pixels ``im`` decoded to (with its mode and ``stored`` size, both as displayed): equal for
    two files that hold the same image under other metadata (EXIF, comments, another PNG compression, pixels
    stored turned with an orientation that turns them back), whatever their bytes.

    A JPEG is digested as :func:`inspect` decodes it, at 1/8 scale (libjpeg's DCT scaling: the same
    coefficients give the same pixels), so a JPEG and a lossless PNG of its pixels digest differently.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{im.mode} {stored[0]}x{stored[1]} {im.size[0]}x{im.size[1]}\0".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def inspect(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode ``path`` fully (JPEG at 1/8 scale: the whole stream is still read) and describe it, with a
    digest of the decoded pixels (the data stage's train/val twin check reads it: no second decode).

    Raises :class:`TooLarge` when the header declares more than ``max_pixels`` pixels (nothing is
    decoded: a 17 KB PNG can declare 144 megapixels), and :class:`UnreadableImage` for a corrupt,
    truncated or non-image file.
    """
    try:
        return _inspect(path, max_pixels)
    except ImageTooLarge as exc:
        raise TooLarge(str(exc).removeprefix(f"{path}: ")) from None  # the caller names the file
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    except ImportError as exc:  # an importer that patched Image.open (ultralytics) looking for a HEIF plugin
        raise UnreadableImage(f"not a recognised image ({exc})") from None


def _inspect(path: Path, max_pixels: int) -> ImageInfo:
    with open_image(path, max_pixels) as im:
        im.verify()
    with open_image(path, max_pixels) as im:
        fmt, mode, (w, h) = im.format, im.mode, im.size
        if fmt == "JPEG":
            im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))
        im.load()
        turn = orientation(im)  # after load: a PNG may carry its EXIF after the pixels
        # the pixels as displayed: a copy stored turned, with an orientation that turns it back, is the same image
        shown = (h, w) if turn in _TRANSPOSED else (w, h)
        pixels = pixel_digest(ImageOps.exif_transpose(im) if turn != 1 else im, shown)
    tail = fmt == "JPEG" and not _jpeg_ends_cleanly(path)
    # bytes after a whole image (a motion photo) lose nothing; decoded without its end marker, it was damaged
    repaired = tail and jpeg_stream_end(path.read_bytes()) is None
    reasons = [
        f"{fmt} format" if fmt not in _LINKABLE else "",
        f"{mode} pixels" if mode != "RGB" else "",
        f"EXIF orientation {turn}" if turn != 1 else "",
        ("JPEG without end marker" if repaired else "data after the JPEG end marker") if tail else "",
    ]
    reason = ", ".join(r for r in reasons if r) or None
    dw, dh = (h, w) if turn in _TRANSPOSED else (w, h)
    return ImageInfo(dw, dh, w, h, turn, str(fmt), reason, repaired, pixels)


def write_normalized(src: Path, dst: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Save ``src`` as an RGB PNG at ``dst`` holding exactly what :func:`edgeproof.runtime.image.decode`
    reads from it (EXIF orientation applied, 8-bit RGB as OpenCV converts); atomic."""
    pixels, _ = decode(src, max_pixels)
    with atomic_path(dst, suffix=".png", durable=False) as tmp:  # the data stage syncs the whole tree
        Image.fromarray(pixels, "RGB").save(tmp, "PNG", compress_level=1)


def link_or_copy(src: Path, dst: Path, hardlink: bool) -> str:
    """Hard-link ``src`` to ``dst`` (copy where links are not possible or not wanted); returns which."""
    if hardlink:
        try:
            os.link(src, dst)
            return "linked"
        except OSError:  # another filesystem, or links not allowed
            pass
    with atomic_path(dst, suffix=dst.suffix, durable=False) as tmp:
        shutil.copyfile(src, tmp)
    return "copied"


def to_displayed(box: Box, orientation: int, stored_w: int, stored_h: int) -> Box:
    """Map an ``[x, y, w, h]`` box from the stored pixel frame to the EXIF-displayed frame."""
    x, y, w, h = box
    x0, y0, x1, y1 = x, y, x + w, y + h
    W, H = stored_w, stored_h
    corners = {
        1: (x0, y0, x1, y1),
        2: (W - x1, y0, W - x0, y1),  # mirror horizontal
        3: (W - x1, H - y1, W - x0, H - y0),  # rotate 180
        4: (x0, H - y1, x1, H - y0),  # mirror vertical
        5: (y0, x0, y1, x1),  # transpose
        6: (H - y1, x0, H - y0, x1),  # rotate 90 clockwise
        7: (H - y1, W - x1, H - y0, W - x0),  # transverse
        8: (y0, W - x1, y1, W - x0),  # rotate 90 counter-clockwise
    }[orientation]
    a0, b0, a1, b1 = corners
    return (a0, b0, a1 - a0, b1 - b0)
