"""The bad-input table: each case writes one broken input into a sandbox repo and names the entry point
to feed it to, and what a clean refusal must mention (the file or the key).

``expect="error"``: the entry point must exit non-zero with a message naming the file/key.
``expect="problem"``: the data stage goes on without the bad file and its report
(``metrics/data.json``) names it; that is how the data stage refuses single files by design.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from reliability import sandbox as sb

DATA = ("stage:data", ["--out", "data/prepared", "--metrics", "metrics/data.json"])


@dataclass(frozen=True)
class Call:
    """What to run in the sandbox, and what a clean refusal looks like."""

    entry: str  # "stage:<name>" (python -m stages.<name>), "cli" (the edgeproof command) or "device" (its CLI)
    argv: list[str]
    needles: tuple[str, ...]  # every one must appear in the error output (or the data report)
    expect: str = "error"  # "error" | "problem"
    isolated: bool = False  # run in a child process (imports that patch libraries, e.g. ultralytics)
    exit_code: int | None = None  # when set, a clean refusal exits with exactly this (documented) code
    report: tuple[str, str, str] | None = None  # (JSON file under the repo, key, value) the run must write


@dataclass(frozen=True)
class Case:
    """One kind of bad input."""

    name: str
    what: str
    build: Callable[[Path], Call]


def _data(*needles: str, expect: str = "error") -> Call:
    return Call(DATA[0], list(DATA[1]), needles, expect)


def _coco_text(text: str | bytes) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        paths = sb.coco(repo)
        data = text.encode() if isinstance(text, str) else text
        paths["train"].write_bytes(data if data != b"<truncate>" else paths["train"].read_bytes()[:150])
        return _data("train.json")

    return build


def _coco_edit(edit: Callable[[dict], None], *needles: str, expect: str = "problem") -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        paths = sb.coco(repo)
        gt = json.loads(paths["train"].read_text())
        edit(gt)
        paths["train"].write_text(json.dumps(gt))
        return _data(*needles, expect=expect)

    return build


def _set_bbox(gt: dict) -> None:
    gt["annotations"][0]["bbox"] = "10 10 40 30"


def _list_id(gt: dict) -> None:
    gt["images"][0]["id"] = [100]


def _nan_box(gt: dict) -> None:
    gt["annotations"][0]["bbox"] = [10, 10, float("nan"), 30]


def _coco_val_edit(edit: Callable[[dict], None], *needles: str) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        paths = sb.coco(repo)
        gt = json.loads(paths["val"].read_text())
        edit(gt)
        paths["val"].write_text(json.dumps(gt))
        return _data(*needles, expect="problem")

    return build


def _area(value: float) -> Callable[[dict], None]:
    def edit(gt: dict) -> None:
        gt["annotations"][0]["area"] = value

    return edit


def _string_crowd(gt: dict) -> None:
    for ann in gt["annotations"]:
        ann["iscrowd"] = "0"


def _relabel(gt: dict) -> None:
    first, second = gt["categories"][0]["name"], gt["categories"][1]["name"]
    gt["categories"][0]["name"], gt["categories"][1]["name"] = second, first


def _leak(how: str) -> Callable[[Path], Call]:
    """A val image that is a train image: a symlink to it, or a byte-identical copy under another name."""

    def build(repo: Path) -> Call:
        sb.coco(repo)
        images = repo / sb.SRC / "images"
        (images / "val" / "500.jpg").unlink()
        if how == "symlink":
            (images / "val" / "500.jpg").symlink_to("../train/100.jpg")
        else:
            (images / "val" / "500.jpg").write_bytes((images / "train" / "100.jpg").read_bytes())
        return _data("split_overlap", "train/100.jpg", expect="problem")

    return build


def _empty_val(repo: Path) -> Call:
    paths = sb.coco(repo)
    gt = json.loads(paths["val"].read_text())
    gt["images"], gt["annotations"] = [], []
    paths["val"].write_text(json.dumps(gt))
    return _data("empty_split", "val")


def _voc_xml(body: str, needle: str) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        root = sb.voc(repo)
        (root / "Annotations" / "im0.xml").write_text(body)
        return _data(needle, expect="problem")

    return build


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    + "]><annotation><filename>&l9;</filename></annotation>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<annotation><filename>&x;</filename></annotation>"
)


def _yolo_label(text: str) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        root = sb.yolo(repo)
        (root / "labels" / "train" / "train0.txt").write_text(text)
        return _data("train0.txt", expect="problem")

    return build


def _yolo_yaml(repo: Path) -> Call:
    root = sb.yolo(repo)
    (root / "data.yaml").write_text("path: .\ntrain: [images/train\nnames: {0: a\n")
    return _data("data.yaml")


def _image(kind: str, needle: str = "unreadable_image") -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        sb.coco(repo)
        path = repo / sb.SRC / "images" / "train" / "100.jpg"
        if kind == "text":
            path.write_text("this is not an image\n")
        elif kind == "truncated":
            path.write_bytes(path.read_bytes()[:300])
        elif kind == "bomb":
            Image.new("1", (10_000, 10_000)).save(path, "PNG")  # 12 KB on disk, 100 M pixels
        elif kind == "bomb-header":
            sb.png_header_only(path, 14_000, 14_000)  # 196 M pixels: over Pillow's own hard limit
        return _data(needle, "100.jpg", expect="problem")

    return build


def _symlink_escape(repo: Path) -> Call:
    paths = sb.coco(repo)
    outside = sb.image(repo.parent / f"{repo.name}-outside" / "secret.jpg")
    (repo / sb.SRC / "images" / "train" / "sub").symlink_to(outside.parent)
    gt = json.loads(paths["train"].read_text())
    gt["images"][0]["file_name"] = "train/sub/secret.jpg"
    paths["train"].write_text(json.dumps(gt))
    return _data("path_escape", "sub/secret.jpg", expect="problem")


def _params(text: str, needle: str, entry: str = "data") -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        sb.coco(repo)
        (repo / "params.yaml").write_text(text)
        if entry == "cli":
            return Call("cli", ["params"], (needle,))
        return _data(needle)

    return build


DATA_CASES = [
    Case("coco-json-malformed", "COCO annotations that are not JSON", _coco_text("{ this is not json")),
    Case("coco-json-truncated", "COCO annotations cut off mid-file", _coco_text(b"<truncate>")),
    Case("coco-json-binary", "COCO annotations that are binary garbage", _coco_text(bytes(range(256)) * 4)),
    Case("coco-json-empty", "an empty (0-byte) COCO annotations file", _coco_text(b"")),
    Case("coco-json-not-object", "COCO annotations that are a JSON list", _coco_text("[1, 2, 3]")),
    Case("coco-bbox-string", "a bbox given as a string", _coco_edit(_set_bbox, "train.json")),
    Case("coco-image-id-list", "an image id that is a list", _coco_edit(_list_id, "train.json")),
    Case("coco-bbox-nan", "a bbox with NaN in it", _coco_edit(_nan_box, "train.json")),
    Case("empty-val-split", "a val split without images", _empty_val),
    Case("voc-billion-laughs", "VOC XML entity expansion bomb", _voc_xml(LAUGHS, "im0.xml")),
    Case("voc-external-entity", "VOC XML with an external entity", _voc_xml(EXTERNAL, "im0.xml")),
    Case("voc-xml-malformed", "VOC XML that does not parse", _voc_xml("<annotation><object>", "im0.xml")),
    Case("yolo-label-garbage", "YOLO label rows that are not numbers", _yolo_label("zero 0.5 0.5 abc\n")),
    Case("yolo-label-nan", "YOLO label rows with NaN/inf", _yolo_label("0 nan 0.5 inf 0.2\n")),
    Case("yolo-data-yaml-invalid", "a YOLO data.yaml that is not YAML", _yolo_yaml),
    Case("image-not-an-image", "a .jpg that is a text file", _image("text")),
    Case("image-truncated", "a JPEG cut off after 300 bytes", _image("truncated")),
    Case("image-decompression-bomb", "a 12 KB PNG declaring 10000x10000 pixels", _image("bomb", "image_too_large")),
    Case("image-bomb-196mp", "a PNG header declaring 14000x14000 pixels", _image("bomb-header", "image_too_large")),
    Case("coco-area-negative", "a COCO area of -1 (pycocotools skips it)", _coco_edit(_area(-1.0), "area_invalid")),
    Case("coco-area-huge", "a COCO area of 1e11 (over pycocotools' range)", _coco_edit(_area(1e11), "area_invalid")),
    Case("coco-iscrowd-string", 'iscrowd: "0" (a truthy string)', _coco_edit(_string_crowd, "iscrowd_invalid")),
    Case("coco-val-relabelled", "val.json swaps two category names", _coco_val_edit(_relabel, "category_mismatch")),
    Case("split-leak-symlink", "a val image that is a symlink to a train image", _leak("symlink")),
    Case("split-leak-copy", "a val image that is a byte copy of a train image", _leak("copy")),
    Case("dataset-symlink-escape", "a symlinked folder leading outside the dataset", _symlink_escape),
    Case("params-unknown-key", "params.yaml with a misspelt key", _params("train:\n  epoch: 3\n", "train.epoch")),
    Case("params-not-yaml", "params.yaml that is not YAML", _params("data: [unclosed\n", "params.yaml")),
    Case(
        "params-infinite-threshold",
        "profiles.cpu-ci.gate.max_latency_p95_ms: .inf (would switch the rule off)",
        _params(
            "profiles:\n  cpu-ci:\n    gate:\n      max_latency_p95_ms: .inf\n",
            "profiles.cpu-ci.gate.max_latency_p95_ms",
            entry="cli",
        ),
    ),
    Case(
        "params-duplicate-key",
        "params.yaml with a key given twice (DVC refuses the file)",
        _params("train:\n  epochs: 3\n  epochs: 300\n", "duplicate key", entry="cli"),
    ),
    Case(
        "params-bundle-clip-escape",
        "bundle.clip: data/sources/../../../../etc/passwd",
        _params("bundle:\n  clip: data/sources/../../../../etc/passwd\n", "bundle.clip", entry="cli"),
    ),
    Case(
        "params-huge-seed",
        "train.seed: 2**70",
        _params("train:\n  seed: 1180591620717411303424\n", "train.seed", entry="cli"),
    ),
]
