"""A dataset tracked with ``dvc add`` under DVC's ``cache.type: symlink``: every file a link into the cache.

Those links are the files themselves, not links out of the dataset (contact11 #5: all 180 files of such a
dataset were ``path_escape`` and the stage failed). DVC is asked where its cache is (``cache.dir``).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from edgeproof.config import parse_params
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from tests.data.builders import clean_coco, draw, isolated_dvc_repo, write_yolo_image, yolo_line
from tests.data.test_coco import SRC, coco_params


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repo with a ``.dvc/`` folder and every user/system DVC config location pointed at empty folders."""
    return isolated_dvc_repo(tmp_path, monkeypatch, "[cache]\n    type = symlink\n")


def to_dvc_cache(folder: Path, cache: Path) -> int:
    """What ``dvc add folder`` with ``cache.type: symlink`` leaves: each file moved into ``cache`` under its
    md5 (``files/md5/ab/cdef...``, read-only) and a symlink to it in its place. Returns the files linked."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    for path in files:
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        obj = cache / "files" / "md5" / md5[:2] / md5[2:]
        obj.parent.mkdir(parents=True, exist_ok=True)
        if obj.exists():
            path.unlink()
        else:
            shutil.move(path, obj)
            obj.chmod(0o444)
        path.symlink_to(obj)
    return len(files)


def _coco(repo: Path):
    clean_coco(repo / SRC)
    return coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}, strict=True)


def test_links_into_the_repos_dvc_cache_are_the_files(repo, tmp_path):
    params = _coco(repo)
    assert to_dvc_cache(repo / SRC, repo / ".dvc/cache") == 11  # 9 images, 2 annotation files
    report = prepare(params, repo, tmp_path / "out")  # strict: not one problem
    assert report["splits"]["train"]["images"] == 6 and report["splits"]["val"]["images"] == 3
    assert report["splits"]["val"]["boxes"] == 6


def test_the_cache_folder_is_asked_of_dvc(repo, tmp_path):
    """A shared cache outside the repo (``cache.dir``, here in config.local) is the repo's DVC cache too."""
    shared = tmp_path / "shared-cache"
    (repo / ".dvc/config.local").write_text(f"[cache]\n    dir = {shared}\n")
    params = _coco(repo)
    to_dvc_cache(repo / SRC, shared)
    report = prepare(params, repo, tmp_path / "out")
    assert report["problems_total"] == 0 and report["splits"]["train"]["images"] == 6


def test_yolo_label_files_in_the_cache_are_read(repo, tmp_path):
    root = repo / "data/sources/shapes"
    root.mkdir(parents=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "val": "images/val", "names": ["a"]}))
    for split, n in (("train", 3), ("val", 2)):
        for k in range(n):
            box, seed = (10 + k, 10, 20, 20), 10 * n + k  # distinct images: no train/val twins
            write_yolo_image(root, split, f"{split}{k}", draw(80, 60, [box], seed=seed), [yolo_line(0, box, 80, 60)])
    to_dvc_cache(root, repo / ".dvc/cache")
    data = {"source": "yolo", "strict": True, "yolo": {"data_yaml": "data/sources/shapes/data.yaml"}}
    report = prepare(parse_params({"data": data}).data, repo, tmp_path / "out")
    assert report["splits"]["train"]["boxes"] == 3 and report["splits"]["val"]["boxes"] == 2


def test_links_into_another_repos_cache_name_dvc(repo, tmp_path):
    """A dataset copied with its links from another DVC repo: not this cache, so path_escape, saying why."""
    params = _coco(repo)
    to_dvc_cache(repo / SRC / "val", tmp_path / "other/.dvc/cache")
    with pytest.raises(DatasetError, match="empty_split") as err:
        prepare(params, repo, tmp_path / "out")
    report = err.value.report
    assert report["problems"]["path_escape"] == 3
    example = report["problem_examples"]["path_escape"][0]
    assert example.startswith(f"{SRC}/val/") and f"a symlink leads outside {SRC}/val, to {tmp_path}/other/" in example
    assert "a DVC cache object (DVC's cache.type symlink), but not in this repo's DVC cache" in example
    assert "(cp -rL)" in example
