"""Tiny real datasets for the data tests, generated on the fly (COCO, VOC, YOLO).

Images are dark with one bright rectangle per box, so a test can check that a box still covers
its object after EXIF rotation or any other transformation.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

BoxXYWH = tuple[float, float, float, float]


def draw(width: int, height: int, boxes: Sequence[BoxXYWH] = (), seed: int = 0) -> np.ndarray:
    """An RGB array: dark noise with a bright rectangle filling each ``[x, y, w, h]`` box."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)
    for x, y, w, h in boxes:
        x0, y0 = max(round(x), 0), max(round(y), 0)
        arr[y0 : round(y + h), x0 : round(x + w)] = (230, 230, 230)
    return arr


def save(
    path: Path,
    arr: np.ndarray,
    fmt: str = "JPEG",
    mode: str = "RGB",
    orientation: int | None = None,
) -> Path:
    """Write ``arr`` as ``fmt`` in ``mode``; ``orientation`` stores an EXIF orientation tag."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr).convert(mode)
    kwargs: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    im.save(path, fmt, **kwargs)
    return path


def stored_for_orientation_6(displayed: np.ndarray) -> np.ndarray:
    """The stored pixels that an EXIF orientation 6 (rotate 90 clockwise to display) shows as ``displayed``."""
    return np.ascontiguousarray(np.rot90(displayed, k=1))  # counter-clockwise: undone by the clockwise display


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to ``keep`` of its bytes (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def append_garbage(path: Path) -> Path:
    """Bytes after the JPEG end marker: decodable, but ultralytics would rewrite the file."""
    with path.open("ab") as fh:
        fh.write(b"\x00garbage")
    return path


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and symlink under ``root``: sha256 (a link: its target), mode and size, to prove a run
    did not touch it. Links are recorded, never followed: a link planted, retargeted or put in place of a
    file shows, and a link out of the tree (or a dangling one) is neither read nor descended into."""
    out = {}
    for folder, dirs, files in os.walk(root):  # os.walk does not descend into linked folders
        here = Path(folder)
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                digest = "symlink -> " + str(path.readlink())
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[path.relative_to(root).as_posix()] = (digest, st.st_mode, st.st_size)
    return dict(sorted(out.items()))


# --- COCO ------------------------------------------------------------------------------------------

CATEGORIES = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 90, "name": "toothbrush"}]


def coco_image(images: list, image_id: int, file_name: str, w: int, h: int) -> None:
    images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})


def coco_ann(anns: list, image_id: int, cat: int, bbox: Sequence[float], **extra: Any) -> None:
    anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": list(bbox), **extra})


def write_coco(path: Path, images: list, anns: list, categories: list | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    seg = [[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]]
    for a in anns:
        a.setdefault("segmentation", seg)
        a.setdefault("iscrowd", 0)
    data = {
        "info": {"description": "test"},
        "images": images,
        "annotations": anns,
        "categories": categories or CATEGORIES,
    }
    path.write_text(json.dumps(data, indent=1))
    return path


def clean_coco(root: Path, n_train: int = 6, n_val: int = 3, size: tuple[int, int] = (96, 72)) -> dict[str, Path]:
    """A valid COCO dataset with separate train/val files and category ids 1, 3, 90."""
    out = {}
    cats = [c["id"] for c in CATEGORIES]
    for split, n, first_id in (("train", n_train, 1000), ("val", n_val, 5000)):
        images: list = []
        anns: list = []
        for i in range(n):
            w, h = size
            boxes = [(8 + 4 * i % 20, 10, 30, 24), (50, 30, 28, 30)]
            image_id = first_id + 7 * i  # non-contiguous ids
            save(root / split / f"{image_id:012d}.jpg", draw(w, h, boxes, seed=image_id))
            coco_image(images, image_id, f"{image_id:012d}.jpg", w, h)
            for k, box in enumerate(boxes):
                coco_ann(anns, image_id, cats[(i + k) % len(cats)], box, area=float(box[2] * box[3]) * 0.8)
        out[split] = write_coco(root / "annotations" / f"instances_{split}.json", images, anns)
    return out


# --- VOC ---------------------------------------------------------------------------------------------


def voc_xml(filename: str, size: tuple[int, int] | None, objects: Sequence[tuple[str, Sequence[float], int]]) -> str:
    """A VOC annotation; objects are ``(name, (xmin, ymin, xmax, ymax), difficult)`` (1-based corners)."""
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return f"<annotation><folder>VOC</folder><filename>{filename}</filename>{size_xml}{objs}</annotation>"


def write_voc(
    root: Path, stem: str, arr: np.ndarray | None, objects: list, suffix: str = ".jpg", **save_kw: Any
) -> None:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    if arr is not None:
        fmt = "PNG" if suffix == ".png" else "JPEG"
        save(root / "JPEGImages" / f"{stem}{suffix}", arr, fmt, **save_kw)
    size = (arr.shape[1], arr.shape[0]) if arr is not None else (50, 50)
    (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}{suffix}", size, objects))


def write_split_files(root: Path, train: Sequence[str], val: Sequence[str]) -> None:
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    (main / "train.txt").write_text("".join(f"{s}\n" for s in train))
    (main / "val.txt").write_text("".join(f"{s}\n" for s in val))


# --- YOLO --------------------------------------------------------------------------------------------


def yolo_line(cls: int, box: BoxXYWH, w: int, h: int) -> str:
    x, y, bw, bh = box
    return f"{cls} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}"


def write_yolo_image(
    root: Path, split: str, stem: str, arr: np.ndarray, lines: Sequence[str] | None, **kw: Any
) -> None:
    fmt = kw.pop("fmt", "JPEG")
    suffix = ".png" if fmt == "PNG" else ".jpg"
    save(root / "images" / split / f"{stem}{suffix}", arr, fmt, **kw)
    if lines is not None:
        label = root / "labels" / split / f"{stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("\n".join(lines) + "\n")


# --- images that only a careful decoder reads right ----------------------------------------------------


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature and header declaring ``width`` x ``height`` (8-bit gray) with one tiny
    data chunk: a few hundred bytes that claim any number of pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1))  # one row; the rest is missing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def png16(path: Path, width: int = 64, height: int = 48, color: bool = False) -> Path:
    """A 16-bit PNG (gray, or RGB with ``color``) ramping over the full 0..65535 range."""
    import cv2

    ramp = (np.arange(width * height, dtype=np.float64) * 65535 / (width * height - 1)).astype(np.uint16)
    gray = ramp.reshape(height, width)
    arr = np.dstack([gray, gray[::-1], 65535 - gray]) if color else gray
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), arr)
    return path


def isolated_dvc_repo(tmp_path: Path, monkeypatch: Any, config: str = "") -> Path:
    """``tmp_path/repo`` with a ``.dvc/config`` of ``config`` (analytics off), and every user and system DVC
    config location pointed at empty folders, so only the repo's own config is read."""
    for var in ("DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR", "XDG_CONFIG_DIRS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home-config"))
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "global"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "system"))
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc/config").write_text("[core]\n    analytics = false\n" + config)
    return repo
