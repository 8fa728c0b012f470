"""The data params schema, the link policy next to DVC's cache, and the stage's exit codes and report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from stages.data import main as data_main

from edgeproof.config import ParamsError, parse_params
from edgeproof.data.prepare import dvc_cache_types, use_hardlinks
from edgeproof.data.synthetic import generate
from tests.data.builders import clean_coco, tree_state

SRC = "data/sources/coco"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"source": "coco"}, "params.yaml: data: source is 'coco', so coco.images, coco.annotations must be set"),
        ({"source": "voc"}, "so voc.root must be set"),
        ({"source": "yolo"}, "so yolo.data_yaml must be set"),
        ({"source": "kitti"}, "data.source: Input should be 'synthetic', 'coco', 'voc' or 'yolo'"),
        ({"coco": {"imags": "x"}}, "data.coco.imags: unknown key; did you mean 'images'?"),
        ({"coco": {"images": "/data/coco"}}, "data.coco.images: must be a path inside the repo"),
        ({"voc": {"root": "../VOC"}}, "data.voc.root: must be a path inside the repo"),
        ({"yolo": {"classes": ["a", "a"]}}, "data.yolo.classes: duplicate class names"),
        ({"coco": {"max_val_images": 0}}, "data.coco.max_val_images: Input should be greater than or equal to 1"),
        ({"voc": {"difficult": "keep"}}, "data.voc.difficult: Input should be 'ignore', 'train' or 'drop'"),
        ({"val_fraction": 1.0}, "data.val_fraction: Input should be less than 1"),
        ({"link": "symlink"}, "data.link: Input should be 'auto', 'hardlink' or 'copy'"),
    ],
)
def test_params_errors_name_the_key(data, message):
    with pytest.raises(ParamsError) as err:
        parse_params({"data": data})
    assert message in str(err.value)


def test_defaults_stay_synthetic():
    data = parse_params({}).data
    assert data.source == "synthetic" and data.strict is False and data.link == "auto"


def test_dvc_hardlink_cache_turns_links_into_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text('[core]\n    analytics = false\n[cache]\n    type = "reflink,copy"\n')
    assert dvc_cache_types(tmp_path) == ["reflink", "copy"] and use_hardlinks("auto", tmp_path)
    (tmp_path / ".dvc/config.local").write_text("[cache]\n    type = hardlink,symlink\n")
    assert dvc_cache_types(tmp_path) == ["hardlink", "symlink"]
    assert not use_hardlinks("auto", tmp_path) and not use_hardlinks("copy", tmp_path)
    with pytest.raises(ValueError, match=r"data\.link"):
        use_hardlinks("hardlink", tmp_path)


def _write_params(repo, data):
    (repo / "params.yaml").write_text(yaml.safe_dump({"data": data}))


def _run_stage(repo):
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        return data_main(["--out", "data/prepared", "--metrics", "metrics/data.json"])
    finally:
        os.chdir(cwd)


def test_stage_builds_coco_and_reports(tmp_path):
    clean_coco(tmp_path / SRC)
    coco = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}
    _write_params(tmp_path, {"source": "coco", "val_fraction": 0.34, "coco": coco})
    assert _run_stage(tmp_path) == 0
    report = json.loads((tmp_path / "metrics/data.json").read_text())
    assert report["source"] == "coco" and report["category_ids"] == [1, 3, 90]
    assert report["splits"]["train"]["images"] == 4 and report["splits"]["val"]["images"] == 2
    assert report["images_placed"] == {"linked": 6}
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["prepared", "sources"]  # no temp dirs left


def test_stage_strict_failure_keeps_the_old_output_and_writes_the_report(tmp_path):
    paths = clean_coco(tmp_path / SRC)
    coco = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}
    _write_params(tmp_path, {"source": "coco", "strict": True, "coco": coco})
    assert _run_stage(tmp_path) == 0
    before = tree_state(tmp_path / "data/prepared")
    gt = json.loads(paths["train"].read_text())
    gt["annotations"][0]["bbox"] = [90.0, 10.0, 50.0, 10.0]  # reaches 44 px outside the 96 px image
    gt["annotations"][0]["area"] = 400.0  # plausible for the new box: only the clipping is a problem
    paths["train"].write_text(json.dumps(gt))
    assert _run_stage(tmp_path) == 2
    report = json.loads((tmp_path / "metrics/data.json").read_text())
    assert report["problems"]["box_clipped"] == 1 and report["problems_total"] == 1
    assert "000000001000.jpg" in report["problem_examples"]["box_clipped"][0]
    assert tree_state(tmp_path / "data/prepared") == before


def test_synthetic_default_output_is_unchanged(tmp_path):
    synthetic = {"n_train": 4, "n_val": 2, "image_size": 64}
    _write_params(tmp_path, {"synthetic": synthetic})
    assert _run_stage(tmp_path) == 0
    direct = tmp_path / "direct"
    generate(parse_params({"data": {"synthetic": synthetic}}).data.synthetic, 0, direct)
    assert tree_state(direct) == tree_state(tmp_path / "data/prepared")
    report = json.loads((tmp_path / "metrics/data.json").read_text())
    assert report["source"] == "synthetic" and report["problems_total"] == 0
    assert report["splits"]["train"]["images"] == 4 and set(report["splits"]["train"]["classes"]) == {
        "circle",
        "square",
        "triangle",
    }


def test_data_stage_stays_on_the_edge_side_of_the_boundary():
    code = (
        "import sys, stages.data, edgeproof.data.prepare\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ultralytics'))\n"
        "assert not leaked, leaked\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
