"""Letterbox geometry and pixels (as ultralytics validates), its exact inverse, and EXIF-aware loading."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edgeproof.data.params import SyntheticParams
from edgeproof.data.synthetic import render_image
from edgeproof.runtime.preprocess import (
    PAD_VALUE,
    Letterbox,
    boxes_to_input,
    boxes_to_original,
    letterbox,
    letterbox_geometry,
    load_image,
    resize_bilinear,
    resize_steps,
    to_input,
)


@pytest.mark.parametrize(("h", "w"), [(100, 200), (200, 100), (256, 256), (37, 301), (640, 480), (300, 500)])
def test_letterbox_fits_and_centres(h, w):
    img = np.full((h, w, 3), 7, np.uint8)
    out, lb = letterbox(img, (128, 128))
    assert out.shape == (128, 128, 3)
    assert max(lb.new_w, lb.new_h) == 128
    # the image occupies exactly [pad, pad + new) and the rest is grey padding
    assert (out[lb.pad_y : lb.pad_y + lb.new_h, lb.pad_x : lb.pad_x + lb.new_w] == 7).all()
    area = lb.new_w * lb.new_h
    assert out.sum(dtype=np.int64) == 7 * 3 * area + PAD_VALUE * 3 * (128 * 128 - area)
    assert lb.pad_x == (128 - lb.new_w) // 2 and lb.pad_y == (128 - lb.new_h) // 2  # odd pixel right/bottom


def test_letterbox_hand_computed_case():
    img = np.zeros((100, 200, 3), np.uint8)
    _, lb = letterbox(img, (64, 64))
    assert lb == Letterbox(new_w=64, new_h=32, pad_x=0, pad_y=16, orig_w=200, orig_h=100)
    assert lb.scale_x == lb.scale_y == pytest.approx(0.32)
    box = np.array([[50.0, 25.0, 150.0, 75.0]])
    assert boxes_to_input(box, lb) == pytest.approx(np.array([[16.0, 24.0, 48.0, 40.0]]))


def test_short_side_is_ceiled_and_boxes_use_per_axis_scales():
    # 500x290 -> 256: r = 0.512, 290 * r = 148.48 -> ceil 149 (round would give 148); pad 107 = 53 + 54
    lb = letterbox_geometry(290, 500, (256, 256))
    assert lb == Letterbox(new_w=256, new_h=149, pad_x=0, pad_y=53, orig_w=500, orig_h=290)
    assert lb.scale_x == pytest.approx(0.512) and lb.scale_y == pytest.approx(149 / 290)
    whole = np.array([[0.0, 0.0, 500.0, 290.0]])
    assert boxes_to_input(whole, lb) == pytest.approx(np.array([[0.0, 53.0, 256.0, 202.0]]))
    # ultralytics computes ceil(273 * (256 / 364)) in floats: 192.00000000000003 -> 193, reproduced
    assert letterbox_geometry(273, 364, (256, 256)).new_h == 193


def test_non_square_input_resizes_twice_like_ultralytics():
    # load_image: long side to max(192, 256) = 256 -> 256x128; LetterBox(scaleup=False) to fit 192 high: no-op
    assert resize_steps(300, 600, (192, 256)) == [(128, 256)]
    # 300x300 -> 256x256 -> shrunk again to 192x192 by LetterBox
    assert resize_steps(300, 300, (192, 256)) == [(256, 256), (192, 192)]
    assert letterbox_geometry(300, 300, (192, 256)) == Letterbox(192, 192, 32, 0, 300, 300)
    assert resize_steps(256, 200, (256, 256)) == []  # long side already fits: used as is


def test_inverse_roundtrip_and_clipping():
    _, lb = letterbox(np.zeros((290, 500, 3), np.uint8), (256, 256))
    assert lb.scale_x != lb.scale_y
    boxes = np.array([[0, 0, 500, 290], [10.5, 20.25, 100.0, 200.0]], np.float32)
    back = boxes_to_original(boxes_to_input(boxes, lb), lb)
    assert back == pytest.approx(boxes, abs=1e-3)
    outside = np.array([[-50.0, -50.0, 400.0, 400.0]], np.float32)  # model-input pixels past the image
    clipped = boxes_to_original(outside, lb)
    assert clipped.dtype == np.float32
    assert clipped[0, 0] == 0 and clipped[0, 1] == 0
    assert clipped[0, 2] == 500 and clipped[0, 3] == 290


@pytest.mark.parametrize(("h", "w", "new_h", "new_w"), [(2000, 2, 256, 1), (500, 1, 256, 1), (1, 3000, 1, 256)])
def test_thin_images_keep_one_pixel(h, w, new_h, new_w):
    img = np.full((h, w, 3), 200, np.uint8)
    out, lb = letterbox(img, (256, 256))
    assert (lb.new_h, lb.new_w) == (new_h, new_w)
    assert out.shape == (256, 256, 3)
    assert (out[lb.pad_y : lb.pad_y + new_h, lb.pad_x : lb.pad_x + new_w] == 200).all()
    assert (out == 200).sum() == 3 * new_h * new_w
    whole = np.array([[0.0, 0.0, w, h]])
    assert boxes_to_original(boxes_to_input(whole, lb), lb) == pytest.approx(whole, rel=1e-6)


def test_bad_images_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match=r"empty image: 0x10"):
        letterbox(np.zeros((10, 0, 3), np.uint8), (64, 64))
    with pytest.raises(ValueError, match=r"empty image"):
        letterbox_geometry(0, 0, (64, 64))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        letterbox(np.zeros((10, 10), np.uint8), (64, 64))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        letterbox(np.zeros((10, 10, 3), np.float32), (64, 64))
    with pytest.raises(ValueError, match=r"input size must be positive"):
        letterbox(np.zeros((10, 10, 3), np.uint8), (0, 64))


def test_resize_bilinear_hand_computed():
    row = np.array([[[0], [255]]], np.uint8)  # 1x2, one channel
    # centres map to -0.25 (clamped), 0.25, 0.75, 1.25 (clamped): 0, 63.75 -> 64, 191.25 -> 191, 255
    assert resize_bilinear(row, 4, 1)[0, :, 0].tolist() == [0, 64, 191, 255]
    # halving samples exactly between pairs (no low-pass beyond that, unlike Pillow's BILINEAR)
    quad = np.array([[[10], [20], [30], [40]]], np.uint8)
    assert resize_bilinear(quad, 2, 1)[0, :, 0].tolist() == [15, 35]
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert (resize_bilinear(img, 7, 5) == img).all()


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


# --- against ultralytics itself --------------------------------------------------------------
# ultralytics is imported only in a child process: importing it here would patch PIL's Image.open
# for every later test. The child runs ultralytics' validation loader on in-memory arrays:
# BaseDataset.load_image (with imread swapped for the array) then LetterBox(scaleup=False), the
# transform YOLODataset.build_transforms uses when not augmenting.

_ULTRALYTICS_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from types import SimpleNamespace

    import cv2
    import numpy as np
    import ultralytics.data.base as base
    from ultralytics.data.augment import LetterBox

    spec = json.loads(Path(sys.argv[1]).read_text())
    current = {}
    base.imread = lambda f, flags=None: current[f]

    def val_input(bgr, imgsz):
        current["img"] = bgr
        ds = SimpleNamespace(ims=[None], im_files=["img"], npy_files=[Path("/nonexistent/img.npy")],
                             imgsz=imgsz, augment=False, cache=None, cv2_flag=cv2.IMREAD_COLOR, channels=3)
        im, _, hw = base.BaseDataset.load_image(ds, 0)
        lb = LetterBox(new_shape=imgsz, scaleup=False)
        p = lb.get_params({"img": im})
        new_w, new_h = p["new_unpad"]
        return lb(image=im), [int(new_h), int(new_w), int(p["top"]), int(p["left"])]

    geometry = []
    for imgsz, h, w in spec["sizes"]:
        geometry.append(val_input(np.zeros((h, w, 3), np.uint8), imgsz)[1])
    for src, dst, imgsz in spec["pixels"]:
        out, _ = val_input(np.ascontiguousarray(np.load(src)[..., ::-1]), imgsz)  # cv2.imread gives BGR
        np.save(dst, np.ascontiguousarray(out[..., ::-1]))
    print(json.dumps(geometry))
    """
)

_INPUT_SIZES: list[Any] = [256, 640, [192, 256], [256, 160]]


def _geometry_cases() -> list[tuple[Any, int, int]]:
    rng = np.random.default_rng(0)
    sizes = [(2000, 2), (500, 1), (1, 3000), (1, 1), (3, 3), (273, 364), (290, 500), (301, 37), (480, 640)]
    sizes += [(100, 1000), (1080, 1920), (256, 256), (640, 640), (255, 257), (2, 2000), (7, 4000)]
    sizes += [(int(a), int(b)) for a, b in rng.integers(1, 1500, size=(60, 2))]
    sizes += [(int(a), int(b)) for a, b in rng.integers(1, 40, size=(20, 2))]
    return [(imgsz, h, w) for imgsz in _INPUT_SIZES for h, w in sizes]


def _pixel_images() -> list[np.ndarray]:
    """Synthetic scenes plus photo-like ones (scene rescaled with sensor noise) in awkward sizes."""
    rng = np.random.default_rng(1)
    scenes = [np.asarray(render_image(SyntheticParams(), 0, "val", i)[0]) for i in range(2)]
    images = list(scenes)
    for w, h in [(37, 301), (2, 2000), (640, 480), (1000, 100), (1500, 900), (1, 500), (3, 3)]:
        scene = Image.fromarray(scenes[len(images) % 2]).resize((w, h), Image.Resampling.BICUBIC)
        noisy = np.asarray(scene).astype(np.float32) + rng.normal(0, 8, (h, w, 3))
        images.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return images


@pytest.fixture(scope="module")
def ultralytics_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Geometry and letterboxed pixels from ultralytics' own code, computed in a child process."""
    if importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("cv2") is None:
        pytest.skip("ultralytics (train extra) is not installed")
    tmp = tmp_path_factory.mktemp("ultralytics_letterbox")
    images = _pixel_images()
    pixels = []
    for i, img in enumerate(images):
        for imgsz in (256, 640, [192, 256]):
            np.save(tmp / f"in{len(pixels)}.npy", img)
            pixels.append((str(tmp / f"in{len(pixels)}.npy"), str(tmp / f"out{len(pixels)}.npy"), imgsz, i))
    spec = {"sizes": _geometry_cases(), "pixels": [p[:3] for p in pixels]}
    (tmp / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp / "cfg"), "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false"}
    proc = subprocess.run(
        [sys.executable, "-c", _ULTRALYTICS_CHILD, str(tmp / "spec.json")], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    geometry = json.loads(proc.stdout.strip().splitlines()[-1])
    outputs = [(images[i], imgsz, np.load(dst)) for _, dst, imgsz, i in pixels]
    return {"geometry": geometry, "pixels": outputs}


def _size(imgsz: Any) -> tuple[int, int]:
    return (imgsz, imgsz) if isinstance(imgsz, int) else (imgsz[0], imgsz[1])


def test_geometry_matches_ultralytics(ultralytics_reference: dict[str, Any]) -> None:
    mismatches = []
    for (imgsz, h, w), expected in zip(_geometry_cases(), ultralytics_reference["geometry"], strict=True):
        lb = letterbox_geometry(h, w, _size(imgsz))
        if [lb.new_h, lb.new_w, lb.pad_y, lb.pad_x] != expected:
            mismatches.append(((imgsz, h, w), [lb.new_h, lb.new_w, lb.pad_y, lb.pad_x], expected))
    assert not mismatches, mismatches[:5]


def test_pixels_match_ultralytics(ultralytics_reference: dict[str, Any]) -> None:
    # resize_bilinear ports OpenCV's fixed-point INTER_LINEAR: against the installed OpenCV it is
    # bit-exact (measured 0 differing values here, on 200 random sizes, and on real JPEGs through
    # YOLODataset). OpenCV's scalar rounding variant would differ by 1 in ~12% of values (mean 0.12),
    # so the bound is 1 grey level and a mean of 0.01. For scale: Pillow's BILINEAR with the same
    # geometry measured a mean of ~0.17 (max 1) when enlarging and 0.5-4.6 (max 83) when shrinking;
    # Pillow's BOX when shrinking 0.3-4.4 (max 81); the old round() + BILINEAR path up to 4.6 (max 141).
    for img, imgsz, expected in ultralytics_reference["pixels"]:
        ours, _ = letterbox(img, _size(imgsz))
        assert ours.shape == expected.shape
        diff = np.abs(ours.astype(np.int16) - expected.astype(np.int16))
        assert diff.max() <= 1 and diff.mean() <= 0.01, (img.shape, imgsz, diff.max(), diff.mean())


def test_letterbox_runs_without_opencv() -> None:
    """The light edge install has no OpenCV: preprocessing must not import it."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cv2", "torch", "ultralytics"):
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, Block())
        from edgeproof.runtime.preprocess import letterbox
        out, lb = letterbox(np.zeros((480, 640, 3), np.uint8), (256, 256))
        assert out.shape == (256, 256, 3) and (lb.new_w, lb.new_h) == (256, 192)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_fast_path_resize_equals_the_numpy_port() -> None:
    """With OpenCV installed the runtime resizes with it; without, with the numpy port: same bytes."""
    from edgeproof.runtime import preprocess

    if preprocess._opencv() is None:
        pytest.skip("OpenCV not installed: only the numpy path exists")
    rng = np.random.default_rng(3)
    for h, w, out_w, out_h in [(220, 190, 256, 222), (480, 640, 256, 192), (37, 301, 256, 32), (2, 2000, 256, 1)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert np.array_equal(preprocess._resize(img, out_w, out_h), preprocess.resize_bilinear(img, out_w, out_h))
