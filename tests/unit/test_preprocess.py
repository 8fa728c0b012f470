"""Letterbox geometry, its exact inverse, and EXIF-aware loading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeproof.runtime.preprocess import (
    PAD_VALUE,
    boxes_to_input,
    boxes_to_original,
    letterbox,
    load_image,
    to_input,
)


@pytest.mark.parametrize(("h", "w"), [(100, 200), (200, 100), (256, 256), (37, 301), (640, 480)])
def test_letterbox_fits_and_centres(h, w):
    img = np.full((h, w, 3), 7, np.uint8)
    out, lb = letterbox(img, (128, 128))
    assert out.shape == (128, 128, 3)
    new_w, new_h = round(w * lb.scale), round(h * lb.scale)
    assert max(new_w, new_h) == 128
    # the image occupies exactly [pad, pad + new) and the rest is grey padding
    assert (out[lb.pad_y : lb.pad_y + new_h, lb.pad_x : lb.pad_x + new_w] == 7).all()
    assert out.sum(dtype=np.int64) == 7 * 3 * new_w * new_h + PAD_VALUE * 3 * (128 * 128 - new_w * new_h)
    assert abs(lb.pad_x - (128 - new_w) / 2) <= 0.5 and abs(lb.pad_y - (128 - new_h) / 2) <= 0.5


def test_letterbox_hand_computed_case():
    img = np.zeros((100, 200, 3), np.uint8)
    _, lb = letterbox(img, (64, 64))
    assert lb.scale == pytest.approx(0.32)
    assert (lb.pad_x, lb.pad_y) == (0, 16)  # 200x100 -> 64x32, padded 16 rows top and bottom
    box = np.array([[50.0, 25.0, 150.0, 75.0]])
    assert boxes_to_input(box, lb) == pytest.approx(np.array([[16.0, 24.0, 48.0, 40.0]]))


def test_inverse_roundtrip_and_clipping():
    _, lb = letterbox(np.zeros((300, 500, 3), np.uint8), (256, 256))
    boxes = np.array([[0, 0, 500, 300], [10.5, 20.25, 100.0, 200.0]], np.float32)
    back = boxes_to_original(boxes_to_input(boxes, lb), lb)
    assert back == pytest.approx(boxes, abs=1e-3)
    outside = np.array([[-50.0, -50.0, 400.0, 400.0]], np.float32)  # model-input pixels past the image
    clipped = boxes_to_original(outside, lb)
    assert clipped[0, 0] == 0 and clipped[0, 1] == 0
    assert clipped[0, 2] == 500 and clipped[0, 3] == 300


def test_to_input_is_nchw_unit_range():
    batch = to_input([np.full((4, 5, 3), 255, np.uint8), np.zeros((4, 5, 3), np.uint8)])
    assert batch.shape == (2, 3, 4, 5) and batch.dtype == np.float32
    assert batch[0].min() == 1.0 and batch[1].max() == 0.0


def test_load_image_applies_exif_orientation_and_gray(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :5] = 255  # white stripe on the left
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif, quality=100)
    loaded = load_image(path)
    assert loaded.shape == (20, 10, 3)  # displayed frame: width and height swapped
    assert loaded[:5].mean() > 200  # the stripe is now along the top
    gray = tmp_path / "g.png"
    Image.fromarray(np.full((6, 7), 9, np.uint8), mode="L").save(gray)
    assert load_image(gray).shape == (6, 7, 3)


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg"):
        load_image(tmp_path / "missing.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"junk\.jpg: unreadable image"):
        load_image(junk)
