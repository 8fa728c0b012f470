"""One image decoder for the data stage, the runtime, evaluation and the device side (issue 18, 22).

Before: a 16-bit PNG loaded almost white in the runtime (mean 254 vs 127 in the data stage and
OpenCV); a 17 KB, 144-megapixel PNG took 1.77 GB RSS in ``edgeproof detect``; a 196-megapixel one
raised an uncaught DecompressionBombError.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeproof.config import ParamsError, parse_params
from edgeproof.data.images import write_normalized
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from edgeproof.runtime.image import DEFAULT_MAX_PIXELS, ImageTooLarge, decode
from edgeproof.runtime.preprocess import load_image
from tests.data.builders import clean_coco, draw, png16, png_header_only, save
from tests.data.photos import FILES, write_photo_split
from tests.data.test_coco import SRC, coco_params

cv2 = pytest.importorskip("cv2")
REPO = Path(__file__).resolve().parents[2]


def _cv2_rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


@pytest.mark.parametrize("color", [False, True])
def test_16_bit_png_reads_as_opencv_reads_it(tmp_path, color):
    path = png16(tmp_path / "deep.png", color=color)
    runtime = load_image(path)
    assert abs(runtime.mean() - 127.5) < 1.5  # was 254 for gray: Pillow's convert clips to 255
    assert np.array_equal(runtime, _cv2_rgb(path))
    write_normalized(path, tmp_path / "prepared.png")  # the data stage's copy
    assert np.array_equal(load_image(tmp_path / "prepared.png"), runtime)


def test_alpha_palette_and_gray_match_opencv(tmp_path):
    arr = draw(40, 30, [(5, 5, 10, 10)])
    rgba = np.dstack([arr, np.full(arr.shape[:2], 7, np.uint8)])  # almost transparent: alpha dropped, not blended
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(arr).convert("P").save(tmp_path / "p.png")
    save(tmp_path / "g.png", arr, "PNG", mode="L")
    for name in ("a.png", "p.png", "g.png"):
        assert np.array_equal(load_image(tmp_path / name), _cv2_rgb(tmp_path / name)), name


def test_real_photos_same_pixels_in_data_stage_runtime_and_opencv(tmp_path):
    write_photo_split(tmp_path / "photos")
    for stem, (_, kind) in FILES.items():
        path = tmp_path / "photos" / f"{stem}.{'png' if kind == 'png' else 'jpg'}"
        runtime = load_image(path)
        write_normalized(path, tmp_path / f"{stem}.png")
        assert np.array_equal(load_image(tmp_path / f"{stem}.png"), runtime), stem
        if kind != "exif6":  # OpenCV applies EXIF too, but only for JPEG: compare the plain files
            assert np.array_equal(runtime, _cv2_rgb(path)), stem


def test_bomb_header_is_refused_before_decoding(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 12000, 12000)  # 144 megapixels in a few hundred bytes
    assert bomb.stat().st_size < 1000
    with pytest.raises(ImageTooLarge) as err:
        load_image(bomb)
    message = str(err.value)
    assert message.startswith(f"{bomb}: 12000x12000 = 144000000 pixels is over the limit of {DEFAULT_MAX_PIXELS}")
    assert "\n" not in message


def test_over_pillows_own_limit_is_the_same_clear_error(tmp_path):
    bomb = png_header_only(tmp_path / "huge.png", 14000, 14000)  # 196 MP: Pillow itself raises at open
    with pytest.raises(ImageTooLarge) as err:
        load_image(bomb)
    assert str(err.value).startswith(f"{bomb}: 196000000 pixels is over the limit of {DEFAULT_MAX_PIXELS} (")
    assert isinstance(ImageTooLarge("x"), ValueError)  # the CLI's one-line, exit-2 class of errors


def test_bomb_costs_no_memory(tmp_path):
    """A fresh interpreter refusing the 144 MP header stays far below the 144 MB the pixels would take."""
    bomb = png_header_only(tmp_path / "bomb.png", 12000, 12000)
    code = (
        "import resource, sys\n"
        "from edgeproof.runtime.image import load_image, ImageTooLarge\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    load_image(sys.argv[1])\nexcept ImageTooLarge:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 20_000  # KiB


def test_data_stage_limit_is_a_setting(tmp_path):
    repo = tmp_path / "repo"
    clean_coco(repo / SRC)  # 96x72 = 6912 pixels each
    params = {"coco": {"images": f"{SRC}/train", "val_images": f"{SRC}/val"}, "max_image_pixels": 6000}
    with pytest.raises(DatasetError, match="empty_split") as err:  # every image is over the limit
        prepare(coco_params(**params), repo, tmp_path / "out")
    report = err.value.report
    assert report is not None and report["problems"]["image_too_large"] == 9
    example = report["problem_examples"]["image_too_large"][0]
    assert example == f"{SRC}/train/000000001000.jpg: 96x72 = 6912 pixels is over the limit of 6000" + (
        f" (a decompression bomb, or raise data.max_image_pixels, up to {DEFAULT_MAX_PIXELS}); not decoded"
    )


@pytest.mark.parametrize("value", [0, 99, DEFAULT_MAX_PIXELS + 1, "big", 1.5])
def test_pixel_limit_is_validated_naming_the_key(value):
    with pytest.raises(ParamsError, match=r"params.yaml: data.max_image_pixels: "):
        parse_params({"data": {"max_image_pixels": value}})


def test_a_limit_over_the_fixed_one_says_why_and_what_to_do():
    """contact11 #8: raising the limit as the message said was refused with pydantic's bare bound."""
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"max_image_pixels": 120_000_000}})
    assert f"at most {DEFAULT_MAX_PIXELS} (got 120000000): evaluation and the device decode no more" in str(err.value)
    assert "downscale larger photos" in str(err.value)


def test_a_108_mp_photo_is_told_to_be_downscaled_without_pillows_warning(tmp_path):
    """A 108 MP phone photo (over Pillow's limit, under twice it: Pillow warns, then edgeproof refuses): one
    message, edgeproof's, which says the limit is fixed and to downscale (not to raise a setting that refuses)."""
    photo = png_header_only(tmp_path / "phone_108mp.png", 12000, 9000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageTooLarge) as err:
            load_image(photo)
    assert [w.category for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []
    message = str(err.value)
    assert message.startswith(f"{photo}: 12000x9000 = 108000000 pixels is over the limit of {DEFAULT_MAX_PIXELS} (")
    assert "the limit is fixed, so downscale it" in message and "max_image_pixels" not in message


def test_bomb_in_a_dataset_is_dropped_undecoded_and_strict_fails(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    png_header_only(repo / SRC / "train" / "bomb.png", 12000, 12000)
    data = json.loads(paths["train"].read_text())
    data["images"].append({"id": 77, "file_name": "bomb.png", "width": 12000, "height": 12000})
    data["annotations"].append({"id": 77, "image_id": 77, "category_id": 1, "bbox": [1, 1, 50, 50], "iscrowd": 0})
    paths["train"].write_text(json.dumps(data))
    params = {"coco": {"images": f"{SRC}/train", "val_images": f"{SRC}/val"}}
    report = prepare(coco_params(**params), repo, tmp_path / "out")
    assert report["problems"]["image_too_large"] == 1 and report["splits"]["train"]["images"] == 6
    with pytest.raises(DatasetError, match="image_too_large"):
        prepare(coco_params(strict=True, **params), repo, tmp_path / "strict")


def test_decode_straight_to_size(tmp_path):
    big = save(tmp_path / "big.jpg", draw(2048, 1536, [(100, 100, 800, 600)]))
    full, size = decode(big)
    small, small_size = decode(big, reduce_to=(256, 256))
    assert full.shape == (1536, 2048, 3) and size == small_size == (1536, 2048)
    assert small.shape == (192, 256, 3)  # libjpeg's 1/8 scale: the long side is still >= 256
    assert np.abs(small.astype(int) - full[4::8, 4::8].astype(int)).mean() < 8  # the same picture
    assert decode(big, reduce_to=(320, 320))[0].shape == (384, 512, 3)  # 1/4: 1/8 would be under 320
    rotated = save(tmp_path / "rot.jpg", draw(2048, 1024), orientation=6)
    pixels, shown = decode(rotated, reduce_to=(256, 256))
    assert shown == (2048, 1024) and pixels.shape == (256, 128, 3)  # displayed frame, 1/8 scale
    assert decode(rotated)[0].shape == (2048, 1024, 3)
    tiny = save(tmp_path / "tiny.jpg", draw(200, 100))
    assert np.array_equal(decode(tiny, reduce_to=(256, 256))[0], decode(tiny)[0])  # never below the input
    png = save(tmp_path / "big.png", draw(1024, 512), "PNG")
    assert decode(png, reduce_to=(256, 256))[0].shape == (512, 1024, 3)  # only JPEG has DCT scaling


def test_every_reader_uses_the_one_decoder():
    """No module decodes pixels on its own: Image.open/cv2.imread appear only in the decoder and the
    data stage's header checks (and in tools that never feed a model: tracking thumbnails, tests)."""
    allowed = {"runtime/image.py", "data/images.py", "training/ultralytics_env.py", "training/crosscheck.py"}
    offenders = []
    for path in sorted((REPO / "src/edgeproof").rglob("*.py")):
        rel = path.relative_to(REPO / "src/edgeproof").as_posix()
        text = path.read_text()
        if rel not in allowed and not rel.startswith("reliability/") and ("Image.open(" in text or "imread(" in text):
            offenders.append(rel)
    assert offenders == []
    from edgeproof.runtime import image, preprocess

    assert preprocess.load_image is image.load_image  # one home, re-exported where its callers look


@pytest.mark.parametrize("side", [12000, 14000])  # 144 MP (was 1.77 GB RSS), 196 MP (was a traceback)
def test_detect_refuses_a_bomb_in_one_line(tmp_path, side, caplog):
    from edgeproof.cli import main
    from tests.conftest import make_fixed_detector
    from tests.device.builders import IMGSZ, fixed_raw

    model = make_fixed_detector(tmp_path / "m.onnx", fixed_raw(), IMGSZ, {0: "thing"})
    bomb = png_header_only(tmp_path / "bomb.png", side, side)
    assert main(["detect", str(model), str(bomb)]) == 2
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith(f"{bomb}: ") and "not decoded" in record.getMessage()
    assert "\n" not in record.getMessage() and record.exc_info is None
