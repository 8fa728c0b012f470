"""Defect 3: ``data.link: auto`` must see DVC's effective ``cache.type`` at every config level DVC reads.

DVC with a hardlink (or symlink) cache moves an output's files into its cache and makes them
read-only; a prepared image hard-linked to the user's file would become that cache object.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from stages.data import main as data_main

from edgeproof.data.prepare import dvc_cache_types, use_hardlinks
from tests.data.builders import clean_coco, isolated_dvc_repo

SRC = "data/sources/coco"
HARDLINK = "[cache]\n    type = hardlink,symlink\n"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A repo with an empty ``.dvc/config`` and every user/system config location pointed at empty folders."""
    return isolated_dvc_repo(tmp_path, monkeypatch)


def _config(folder: Path, text: str = HARDLINK) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config").write_text(text)


def test_default_cache_types_allow_links(isolated):
    assert "hardlink" not in dvc_cache_types(isolated)
    assert use_hardlinks("auto", isolated)


@pytest.mark.parametrize("level", ["DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR"])
def test_env_config_dirs_are_read(isolated, level):
    _config(Path(os.environ[level]))
    assert dvc_cache_types(isolated) == ["hardlink", "symlink"]
    assert not use_hardlinks("auto", isolated)


def test_xdg_config_dirs_is_the_system_level(isolated, monkeypatch, tmp_path):
    monkeypatch.delenv("DVC_SYSTEM_CONFIG_DIR")
    _config(tmp_path / "xdg-site" / "dvc")
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'xdg-site'}:/etc/xdg")
    assert not use_hardlinks("auto", isolated)


def test_repo_level_shadows_the_global_one(isolated):
    _config(Path(os.environ["DVC_GLOBAL_CONFIG_DIR"]))
    (isolated / ".dvc/config.local").write_text('[cache]\n    type = "reflink,copy"\n')
    assert dvc_cache_types(isolated) == ["reflink", "copy"] and use_hardlinks("auto", isolated)


def test_a_broken_dvc_config_is_an_error_naming_it(isolated):
    (isolated / ".dvc/config").write_text("[cache\ntype = hardlink\n")
    with pytest.raises(ValueError, match=r"DVC config"):
        use_hardlinks("auto", isolated)


def test_stage_never_links_source_images_under_a_global_hardlink_cache(isolated):
    """End to end: the data stage copies (not links) when only the global config asks for hardlinks."""
    _config(Path(os.environ["DVC_GLOBAL_CONFIG_DIR"]))
    clean_coco(isolated / SRC, n_train=3, n_val=1)
    coco = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}
    (isolated / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "coco", "coco": coco}}))
    cwd = Path.cwd()
    os.chdir(isolated)
    try:
        assert data_main(["--out", "data/prepared", "--metrics", "metrics/data.json"]) == 0
    finally:
        os.chdir(cwd)
    report = json.loads((isolated / "metrics/data.json").read_text())
    assert report["images_placed"] == {"copied": 3}
    assert all(p.stat().st_nlink == 1 for p in (isolated / SRC / "train").iterdir())
