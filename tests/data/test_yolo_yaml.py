"""A data.yaml is read as ultralytics 8.4's ``check_det_dataset`` reads it: a Roboflow export's
``../train/images``, a ``validation`` key, an integer-like ``nc``; and a val split that is a seeded
share of train says so."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeproof.config import parse_params
from edgeproof.data.prepare import prepare
from tests.data.builders import draw, write_yolo_image, yolo_line

SRC = "data/sources/rf"
REPO = Path(__file__).resolve().parents[2]
ROBOFLOW = {"train": "../train/images", "val": "../valid/images", "test": "../test/images", "names": ["ring", "box"]}


def _params(strict: bool = False):
    return parse_params({"data": {"source": "yolo", "strict": strict, "yolo": {"data_yaml": f"{SRC}/data.yaml"}}}).data


def _dataset(repo: Path, data: dict) -> Path:
    """Roboflow's YOLO layout: ``train/`` and ``valid/`` (images + labels) beside the data.yaml; 3 train images
    (one a background), 2 val images, every class with a box in each split."""
    root = repo / SRC
    images = {"train": [("a", 0), ("b", 1), ("c", None)], "valid": [("v", 0), ("w", 1)]}
    for folder, entries in images.items():
        for n, (stem, cls) in enumerate(entries):
            box = (10 + 5 * n, 12, 30, 20)
            lines = None if cls is None else [yolo_line(cls, box, 80, 60)]
            write_yolo_image(root / folder, "", stem, draw(80, 60, [box] if lines else [], seed=ord(stem)), lines)
    (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def _sources(out: Path, split: str) -> list[str]:
    gt = json.loads((out / "annotations" / f"{split}.json").read_text())
    return sorted(im["source_file"] for im in gt["images"])


def test_a_roboflow_export_is_read_as_ultralytics_reads_it_and_says_so(tmp_path):
    repo = tmp_path / "repo"
    _dataset(repo, ROBOFLOW)
    report = prepare(_params(strict=True), repo, tmp_path / "out")  # not a problem: ultralytics trains on it
    assert _sources(tmp_path / "out", "train") == [f"{SRC}/train/images/{s}.jpg" for s in "abc"]
    assert _sources(tmp_path / "out", "val") == [f"{SRC}/valid/images/{s}.jpg" for s in "vw"]
    assert report["problems_total"] == 0 and report["selection"]["val_from"] == "the source's val split"
    train_note, val_note = report["notes"]
    assert train_note == (
        f"{SRC}/data.yaml: train: '../train/images' does not exist, so 'train/images' in the dataset folder is "
        "read, as ultralytics does (a Roboflow export's path); write 'train/images' to say so"
    )
    assert val_note.startswith(f"{SRC}/data.yaml: val: '../valid/images' does not exist, so 'valid/images'")


def test_a_dotdot_entry_is_tried_as_written_first_and_only_alone(tmp_path):
    repo = tmp_path / "repo"
    root = _dataset(repo, {**ROBOFLOW, "val": ["../valid/images"]})  # ultralytics retries a single entry only
    with pytest.raises(FileNotFoundError, match=r"val: '../valid/images' is neither .* under") as err:
        prepare(_params(), repo, tmp_path / "out")
    assert "ultralytics also tries" not in str(err.value)
    (root / "data.yaml").write_text(yaml.safe_dump({**ROBOFLOW, "val": "../nowhere/images"}))
    with pytest.raises(FileNotFoundError, match=r"\(nor is 'nowhere/images', which ultralytics also tries\)"):
        prepare(_params(), repo, tmp_path / "out2")


def test_validation_is_read_as_val_and_says_so(tmp_path):
    repo = tmp_path / "repo"
    root = _dataset(repo, {"train": "train/images", "validation": "valid/images", "names": ["ring", "box"]})
    report = prepare(_params(), repo, tmp_path / "out")
    assert report["splits"]["val"]["images"] == 2 and report["splits"]["train"]["images"] == 3
    assert report["selection"]["val_from"] == "the source's val split"
    assert report["notes"] == [
        f"{SRC}/data.yaml: 'validation' read as 'val', as ultralytics does (it warns: rename it 'val')"
    ]
    # with both keys ultralytics reads val alone, and so does edgeproof
    (root / "data.yaml").write_text(
        yaml.safe_dump(
            {"train": "train/images", "val": "valid/images", "validation": "train/images", "names": ["r", "b"]}
        )
    )
    report = prepare(_params(), repo, tmp_path / "out2")
    assert report["splits"]["val"]["images"] == 2 and report["notes"] == []


def test_without_a_val_entry_val_is_a_seeded_split_of_train_said_in_the_report_and_log(tmp_path, caplog):
    repo = tmp_path / "repo"
    _dataset(repo, {"train": ["train/images", "valid/images"], "names": ["ring", "box"]})
    with caplog.at_level(logging.WARNING):
        report = prepare(_params(), repo, tmp_path / "out")
    said = "seeded split of train (the data.yaml has no 'val' (or 'validation') entry; data.val_fraction 0.2, seed 0)"
    assert report["selection"]["val_from"] == said
    assert f"val is a {said}" in caplog.text
    assert report["splits"]["val"]["images"] == 1  # round(5 x 0.2)


@pytest.mark.parametrize("nc", ["2", 2.0, "2.0"])
def test_an_integer_like_nc_is_accepted_as_ultralytics_accepts_it_and_said(tmp_path, nc, caplog):
    """docs12 review: docs/data.md says each such reading is a warning and a note; nc's was neither."""
    repo = tmp_path / "repo"
    _dataset(repo, {"train": "train/images", "val": "valid/images", "nc": nc, "names": ["ring", "box"]})
    with caplog.at_level(logging.WARNING):
        report = prepare(_params(), repo, tmp_path / "out")
    assert report["classes"] == ["ring", "box"]
    said = f"nc {nc!r} read as 2, as ultralytics reads it (write nc: 2)"
    assert [n for n in report["notes"] if said in n] and said in caplog.text
    repo2 = tmp_path / "repo2"  # an integer nc is as ultralytics writes it: nothing to say
    _dataset(repo2, {"train": "train/images", "val": "valid/images", "nc": 2, "names": ["ring", "box"]})
    assert not [n for n in prepare(_params(), repo2, tmp_path / "out2")["notes"] if "nc " in n]


@pytest.mark.parametrize(
    ("nc", "said"),
    [("2.5", "nc: '2.5' must be an integer"), (None, "nc: None must be an integer"), (3, "nc is 3 but 2 names")],
)
def test_an_nc_that_is_no_integer_or_disagrees_says_which(tmp_path, nc, said):
    repo = tmp_path / "repo"
    _dataset(repo, {"train": "train/images", "val": "valid/images", "nc": nc, "names": ["ring", "box"]})
    with pytest.raises(ValueError, match=said):
        prepare(_params(), repo, tmp_path / "out")


PROBE = """
import json, sys
from pathlib import Path
from edgeproof.training.ultralytics_env import configure
configure(Path(sys.argv[1]))
from ultralytics.data.utils import check_det_dataset
out = {}
for path in sys.argv[2:]:
    data = check_det_dataset(path, autodownload=False)
    out[path] = {"train": data["train"], "val": data["val"]}
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None, reason="ultralytics not installed")
def test_ultralytics_resolves_the_same_folders(tmp_path):
    yamls = {"roboflow": ROBOFLOW, "validation": {"train": "train/images", "validation": "valid/images", "nc": "2"}}
    repos = {}
    for name, data in yamls.items():
        repos[name] = tmp_path / name
        _dataset(repos[name], {"names": ["ring", "box"], **data})
    paths = [str(repo / SRC / "data.yaml") for repo in repos.values()]
    cmd = [sys.executable, "-c", PROBE, str(tmp_path / "state"), *paths]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, repo in repos.items():
        prepare(_params(), repo, tmp_path / f"out_{name}")
        for split in ("train", "val"):
            folder = Path(seen[str(repo / SRC / "data.yaml")][split]).relative_to(repo).as_posix()
            assert [Path(s).parent.as_posix() for s in _sources(tmp_path / f"out_{name}", split)] == [folder] * len(
                list(Path(repo / folder).glob("*.jpg"))
            ), (name, split)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("train: train/images\nval: valid/images\nnames:\n  0: ring\n  1: box\n  1: cube\n", "1", 6),
        ("train: train/images\nval: valid/images\nnames: {0: ring, 1: box, 1: cube}\n", "1", 3),
        ("train: train/images\nval: valid/images\nval: train/images\nnames: [ring, box]\n", "'val'", 3),
    ],
    ids=["names index", "names flow", "top-level val"],
)
def test_a_key_given_twice_is_an_error_naming_the_key_file_and_line(tmp_path, text, key, line):
    """contact11 finding 7: PyYAML keeps the last of two keys, so index 1 typed twice renamed 'box' to 'cube'
    (its boxes trained and scored as cubes) and a second ``val:`` replaced the first, without a word."""
    _dataset(tmp_path, {"train": "train/images", "val": "valid/images", "names": ["ring", "box"]})
    (tmp_path / SRC / "data.yaml").write_text(text)
    with pytest.raises(ValueError, match="duplicate key") as err:
        prepare(_params(), tmp_path, tmp_path / "out")
    message = str(err.value)
    assert message.startswith(f"{SRC}/data.yaml: not valid YAML (line {line}, column ")
    assert f"duplicate key {key}" in message and "\n" not in message


@pytest.mark.parametrize(("names", "index"), [("[ring, ~, box]", 1), ("{0: ring, 1: ''}", 1), ("['  ', box]", 0)])
def test_a_class_without_a_name_is_an_error_naming_its_index(tmp_path, names, index):
    """``names: [ring, ~, box]`` made a class literally named 'None'."""
    _dataset(tmp_path, {"train": "train/images", "val": "valid/images", "names": ["ring", "box"]})
    (tmp_path / SRC / "data.yaml").write_text(f"train: train/images\nval: valid/images\nnames: {names}\n")
    with pytest.raises(ValueError, match=rf"data\.yaml: names: class {index} has no name"):
        prepare(_params(), tmp_path, tmp_path / "out")


def test_a_merge_key_may_be_overridden_and_names_may_be_numbers(tmp_path):
    """What YAML allows stays allowed: a key a merge brings in, overridden; names that are numbers (as ultralytics,
    read as text)."""
    _dataset(tmp_path, {"train": "train/images", "val": "valid/images", "names": ["ring", "box"]})
    text = "base: &b {train: valid/images, val: valid/images}\n<<: *b\ntrain: train/images\nnames: [7, 8]\n"
    (tmp_path / SRC / "data.yaml").write_text(text)
    report = prepare(_params(), tmp_path, tmp_path / "out")
    assert report["classes"] == ["7", "8"] and report["splits"]["train"]["images"] == 3
