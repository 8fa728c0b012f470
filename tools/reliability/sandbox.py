"""Throw-away repos for the reliability cases: tiny user datasets, models and params.

Everything is generated (a few 96x72 JPEGs, a constant-output ONNX "detector"), so the suite needs no
download and no training. The image drawing and the tree snapshot are the tests' own
(tests/data/builders.py): one set of builders for the test suite and this tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tests.data.builders import coco_ann, coco_image, draw, save, write_coco, write_voc, write_yolo_image, yolo_line

SRC = "data/sources/ds"
NAMES = ("person", "car")
BOX = (10, 10, 40, 30)  # x, y, w, h: the one object in every image


def write_params(repo: Path, data: dict[str, Any], **sections: Any) -> Path:
    """``params.yaml`` with a ``data`` section, tracking off, and any other sections given."""
    path = repo / "params.yaml"
    path.write_text(yaml.safe_dump({"data": data, "track": {"enabled": False}, **sections}, sort_keys=False))
    return path


def image(path: Path, seed: int = 0, size: tuple[int, int] = (96, 72)) -> Path:
    """A small noisy JPEG with one bright box."""
    return save(path, draw(size[0], size[1], [BOX], seed=seed))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width`` x ``height`` (8-bit gray) with one row of data: a few
    hundred bytes that claim any number of pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def coco(repo: Path, n_train: int = 4, n_val: int = 2) -> dict[str, Path]:
    """A valid COCO source (separate train and val files) and params pointing at it."""
    root = repo / SRC
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]
    out = {}
    for split, n, first in (("train", n_train, 100), ("val", n_val, 500)):
        images: list = []
        anns: list = []
        for i in range(n):
            name = f"{split}/{first + i}.jpg"
            image(root / "images" / name, seed=first + i)
            coco_image(images, first + i, name, 96, 72)
            coco_ann(anns, first + i, 1 + i % 2, BOX, area=1200.0)
        out[split] = write_coco(root / "annotations" / f"{split}.json", images, anns, cats)
    section = {
        "images": f"{SRC}/images",
        "annotations": f"{SRC}/annotations/train.json",
        "val_annotations": f"{SRC}/annotations/val.json",
    }
    write_params(repo, {"source": "coco", "coco": section})
    return out


def voc(repo: Path, n: int = 6) -> Path:
    """A valid VOC source (seeded split) and params pointing at it; returns its root."""
    root = repo / SRC
    x, y, w, h = BOX
    for i in range(n):
        arr = draw(96, 72, [BOX], seed=i)
        write_voc(root, f"im{i}", arr, [("dog", (x + 1, y + 1, x + w, y + h), 0)])
    write_params(repo, {"source": "voc", "voc": {"root": SRC}})
    return root


def yolo(repo: Path, n_train: int = 4, n_val: int = 2) -> Path:
    """A valid YOLO source and params pointing at it; returns its root."""
    root = repo / SRC
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            write_yolo_image(root, split, f"{split}{i}", draw(96, 72, [BOX], seed=i), [yolo_line(0, BOX, 96, 72)])
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [person, car]\n")
    write_params(repo, {"source": "yolo", "yolo": {"data_yaml": f"{SRC}/data.yaml"}})
    return root


def onnx_model(
    path: Path,
    in_shape: tuple[Any, ...] = ("batch", 3, 64, 64),
    in_type: str = "float",
    out_rows: int = 6,
    boxes: bool = False,
    class_names: Sequence[str] = NAMES,
) -> Path:
    """An ONNX model with a constant ``(batch, out_rows, 84)`` output and the given input signature.

    ``boxes``: two confident detections (one per class) instead of none. ``class_names``: the names in
    its metadata (evaluate refuses a dataset whose names differ, index by index).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dtype = {"float": TensorProto.FLOAT, "int8": TensorProto.INT8, "float16": TensorProto.FLOAT16}[in_type]
    raw = np.zeros((1, out_rows, 84), np.float32)
    if boxes:
        raw[0, :6, 0] = (32, 32, 20, 20, 0.9, 0.0)
        raw[0, :6, 1] = (16, 16, 10, 12, 0.0, 0.6)
    nodes = [  # (batch, ...) input -> (batch, 1, 1) zeros + the constant: the output follows the batch
        helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["m"], axes=list(range(1, len(in_shape))), keepdims=0),
        helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
        helper.make_node("Mul", ["m3", "zero"], ["z"]),
        helper.make_node("Add", ["z", "fixed"], ["output0"]),
    ]
    batch = in_shape[0]
    inits = [
        numpy_helper.from_array(raw, "fixed"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_detector",
        [helper.make_tensor_value_info("images", dtype, list(in_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, out_rows, 84])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    names = {i: n for i, n in enumerate(class_names)}
    helper.set_model_props(model, {"names": repr(names), "imgsz": repr([64, 64]), "stride": "32"})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
