"""Image checks and placement: EXIF frames, modes, damage, and never writing through to the source."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from edgeproof.data.images import (
    UnreadableImage,
    inspect,
    jpeg_stream_end,
    link_or_copy,
    to_displayed,
    write_normalized,
)
from tests.data.builders import append_garbage, draw, save, truncate


def _bright(im: Image.Image) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.asarray(im.convert("L")) > 150)
    return int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_box_follows_every_exif_orientation(tmp_path, orientation):
    stored_box = (5, 3, 12, 8)
    path = save(tmp_path / "o.png", draw(50, 30, [stored_box]), "PNG", orientation=orientation)
    with Image.open(path) as im:
        shown = ImageOps.exif_transpose(im)  # what the evaluation and ultralytics see
    info = inspect(path)
    assert (info.width, info.height) == shown.size
    assert (info.reason is not None) == (orientation != 1)
    assert to_displayed(stored_box, orientation, 50, 30) == _bright(shown)


def test_inspect_reasons(tmp_path):
    assert inspect(save(tmp_path / "rgb.jpg", draw(40, 30))).reason is None
    assert inspect(save(tmp_path / "rgb.png", draw(40, 30), "PNG")).reason is None
    assert "L pixels" in inspect(save(tmp_path / "gray.jpg", draw(40, 30), mode="L")).reason
    assert "RGBA pixels" in inspect(save(tmp_path / "alpha.png", draw(40, 30), "PNG", mode="RGBA")).reason
    assert "BMP format" in inspect(save(tmp_path / "x.bmp", draw(40, 30), "BMP")).reason
    tail = inspect(append_garbage(save(tmp_path / "tail.jpg", draw(40, 30))))
    assert tail.reason == "data after the JPEG end marker"  # copied, so ultralytics never rewrites the file


def test_bytes_after_a_whole_jpeg_are_not_damage(tmp_path):
    """A motion photo: a complete JPEG, then a video. The image loses nothing: no problem, only a copy."""
    path = save(tmp_path / "motion.jpg", draw(64, 48, [(10, 10, 20, 20)]))
    whole = path.read_bytes()
    path.write_bytes(whole + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    info = inspect(path)
    assert not info.repaired and info.reason == "data after the JPEG end marker"
    assert jpeg_stream_end(path.read_bytes()) == len(whole)


def test_a_jpeg_without_its_end_marker_is_unreadable_and_says_why(tmp_path):
    """Only the 2-byte marker missing: indistinguishable from a file cut mid-image, so not used, and said so."""
    path = save(tmp_path / "no_eoi.jpg", draw(64, 48, [(10, 10, 20, 20)]))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(UnreadableImage, match="ends without its end marker"):
        inspect(path)


@pytest.mark.parametrize("progressive", [False, True])
def test_the_end_marker_is_found_past_thumbnails_and_in_progressive_scans(tmp_path, progressive):
    """An EXIF block holding a whole thumbnail JPEG (its own end marker) comes before the image's."""
    thumb = tmp_path / "thumb.jpg"
    save(thumb, draw(16, 12))
    exif = Image.Exif()
    exif[0x0112] = 1
    app1 = exif.tobytes() + thumb.read_bytes()  # the thumbnail's FFD9 sits inside the APP1 segment
    path = tmp_path / "p.jpg"
    Image.fromarray(draw(96, 72, [(10, 10, 30, 20)])).save(path, "JPEG", progressive=progressive, exif=app1)
    data = path.read_bytes()
    assert data.count(b"\xff\xd9") >= 2 and jpeg_stream_end(data) == len(data)
    assert jpeg_stream_end(data[:-2]) is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_unreadable(tmp_path, fmt):
    path = truncate(save(tmp_path / f"t.{fmt.lower()}", draw(120, 90), fmt), keep=0.6)
    with pytest.raises(UnreadableImage):
        inspect(path)


def test_not_an_image(tmp_path):
    (tmp_path / "x.jpg").write_text("hello")
    with pytest.raises(UnreadableImage):
        inspect(tmp_path / "x.jpg")


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    arr = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30).astype(np.uint16)
    src = tmp_path / "deep.png"
    Image.fromarray(arr).save(src)
    write_normalized(src, tmp_path / "out.png")
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (32, 64, 3) and np.array_equal(out[..., 0], (arr >> 8).astype(np.uint8))


def test_link_or_copy(tmp_path):
    src = save(tmp_path / "a.jpg", draw(20, 20))
    assert link_or_copy(src, tmp_path / "linked.jpg", hardlink=True) == "linked"
    assert (tmp_path / "linked.jpg").samefile(src)
    assert link_or_copy(src, tmp_path / "copied.jpg", hardlink=False) == "copied"
    assert not (tmp_path / "copied.jpg").samefile(src)
    assert (tmp_path / "copied.jpg").read_bytes() == src.read_bytes()
