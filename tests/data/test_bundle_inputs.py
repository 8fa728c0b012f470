"""Every input the bundle copies stays where it is declared to be, after resolving (issue 18).

``bundle.clip: data/sources/../../../../etc/passwd`` was accepted and the file copied into the
bundle, a CI artifact, and ``verify`` passed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgeproof.bundle import BundleParams, build_bundle
from edgeproof.config import ParamsError, parse_params
from edgeproof.profiles import parse_profiles
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.scoring import ScoringSettings
from tests.device.builders import write_build_side
from tests.device.conftest import make_bundle, profiles_raw

SECRET = "not for the artifact\n"


def _secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def _build(root: Path, params: BundleParams) -> None:
    """``make_bundle`` with ``params`` as given (the build side written first)."""
    profiles = parse_profiles(profiles_raw())
    if not (root / "reports/release.json").exists():
        write_build_side(root, list(profiles))
    build_bundle(
        out=root / "release/bundle",
        release_path=root / "reports/release.json",
        build_metrics={"eval": root / "metrics/eval.json", "bench": root / "metrics/bench.json"},
        data_dir=root / "data/prepared",
        deploy=DeploySettings(),
        profiles=profiles,
        scoring=ScoringSettings(),
        params=params,
        root=root,
    )


def _nothing_leaked(root: Path) -> None:
    assert not (root / "release" / "bundle").exists()
    leaked = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == SECRET.encode()]
    assert leaked == []


@pytest.mark.parametrize("clip", ["data/sources/../../../../etc/passwd", "data/sources/a/../../x.avi"])
def test_dotdot_clip_is_refused_by_the_params_check(clip):
    with pytest.raises(ParamsError, match=r"params.yaml: bundle.clip: must stay under data/sources/"):
        parse_params({"bundle": {"clip": clip}})


def test_dotdot_clip_is_refused_when_building_too(tmp_path):
    root = tmp_path / "repo"
    _secret(tmp_path)
    (root / "data/sources").mkdir(parents=True)
    # past the params check (as a hand-edited release tool might): the copy itself must refuse
    params = BundleParams.model_construct(max_val_images=None, seed=0, clip="data/sources/../../secret.txt")
    with pytest.raises(ValueError, match=r"bundle.clip: .* leads outside .*data/sources"):
        _build(root, params)
    _nothing_leaked(root)


def test_clip_symlinked_out_of_sources_is_refused(tmp_path):
    root = tmp_path / "repo"
    (root / "data/sources").mkdir(parents=True)
    (root / "data/sources/clip.avi").symlink_to(_secret(tmp_path))
    with pytest.raises(ValueError, match=r"params.yaml: bundle.clip: .*clip.avi leads outside"):
        _build(root, BundleParams(clip="data/sources/clip.avi"))
    _nothing_leaked(root)


def test_model_path_outside_the_repo_is_refused(tmp_path):
    root = tmp_path / "repo"
    make_bundle(root)  # writes the build side
    release = json.loads((root / "reports/release.json").read_text())
    sha = hashlib.sha256(_secret(tmp_path).read_bytes()).hexdigest()  # a release.json that matches the file
    for entry in [*release["variants"].values(), *release["profiles"].values()]:
        entry["path"], entry["sha256"] = "../secret.txt", sha
    (root / "reports/release.json").write_text(json.dumps(release))
    (root / "release/bundle").rename(root / "old-bundle")
    with pytest.raises(ValueError, match=r"release.json: model path: .*leads outside"):
        make_bundle(root)
    _nothing_leaked(root)


def test_val_file_name_outside_images_val_is_refused(tmp_path):
    root = tmp_path / "repo"
    make_bundle(root)
    gt_path = root / "data/prepared/annotations/val.json"
    gt = json.loads(gt_path.read_text())
    gt["images"][0]["file_name"] = "../../../../../secret.txt"
    gt_path.write_text(json.dumps(gt))
    _secret(tmp_path)
    (root / "release/bundle").rename(root / "old-bundle")
    with pytest.raises(ValueError, match=r"val.json: file_name: .*leads outside"):
        make_bundle(root)
    _nothing_leaked(root)


def test_a_clip_inside_sources_still_goes_in(tmp_path):
    pytest.importorskip("cv2")
    bundle = make_bundle(tmp_path / "repo", clip="data/sources/sub/clip.avi")
    assert json.loads((bundle / "deploy.json").read_text())["clip"] == "clip/clip.avi"
    assert (bundle / "clip/clip.avi").stat().st_size > 0
