"""A built bundle (build side with a known answer) shared by the device tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from edgeproof.bundle import BundleParams, build_bundle
from edgeproof.profiles import parse_profiles
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.scoring import ScoringSettings
from tests.device.builders import TEST_PROFILES, TINY_TIMED, TINY_VAL, write_build_side
from tests.pipeline.repo_copy import deep_update

REPO = Path(__file__).resolve().parents[2]


def profiles_raw() -> dict:
    """params.yaml's profiles with the tests' small run counts and extra profiles, each judging the tests' few
    val images (:data:`~tests.device.builders.TINY_VAL`) and few timed frames (``TINY_TIMED``)."""
    raw = deep_update(yaml.safe_load((REPO / "params.yaml").read_text())["profiles"], copy.deepcopy(TEST_PROFILES))
    for profile in raw.values():
        profile.setdefault("gate", {}).update(TINY_VAL, **TINY_TIMED)
    return raw


def base_params(tmp_path: Path, cpu_ci: dict, name: str = "base.yaml") -> Path:
    """A base-branch params.yaml: the repo's, with the tests' profiles and ``cpu_ci`` deep-merged into cpu-ci."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profiles"] = profiles_raw()
    deep_update(params["profiles"]["cpu-ci"], cpu_ci)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(params))
    return path


def make_clip(path: Path, frames: int = 10, size: tuple[int, int] = (96, 64)) -> Path:
    """A small MJPG clip (needs OpenCV)."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 255, np.uint8))
    writer.release()
    return path


def make_bundle(
    root: Path,
    max_val_images: int | None = None,
    seed: int = 0,
    clip: str | None = None,
    profiles: dict | None = None,
    pixels: bool = False,
    deploy: DeploySettings | None = None,
    scoring: ScoringSettings | None = None,
) -> Path:
    """Write the build side under ``root`` (unless it is there) and build ``root/release/bundle`` from it;
    ``profiles``: parsed profiles (default: params.yaml's with the tests' run counts); ``pixels``: the model
    takes uint8 NHWC pixels; ``deploy``/``scoring``: the operating point a pull request's params.yaml set."""
    profiles = profiles if profiles is not None else parse_profiles(profiles_raw())
    if not (root / "reports" / "release.json").exists():
        write_build_side(root, list(profiles), pixels=pixels)
    if clip is not None:
        make_clip(root / clip)
    build_bundle(
        out=root / "release" / "bundle",
        release_path=root / "reports" / "release.json",
        build_metrics={"eval": root / "metrics" / "eval.json", "bench": root / "metrics" / "bench.json"},
        data_dir=root / "data" / "prepared",
        deploy=deploy or DeploySettings(),
        profiles=profiles,
        scoring=scoring or ScoringSettings(),
        params=BundleParams(max_val_images=max_val_images, seed=seed, clip=clip),
        root=root,
    )
    return root / "release" / "bundle"


@pytest.fixture
def bundle(tmp_path) -> Path:
    return make_bundle(tmp_path)


def edit_json(path: Path, fn) -> None:
    """Apply ``fn`` to the JSON object in ``path`` and write it back (a hand-edited results or bundle file)."""
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def rule_named(report: dict, name: str) -> dict:
    """The rule ``name`` of a device gate report."""
    return next(r for r in report["rules"] if r["name"] == name)


def measure_bundle(bundle: Path, profile: str = "cpu-ci") -> Path:
    """The board's measurement of ``bundle`` for ``profile`` (the CPU stands in for the board), its results folder."""
    from edgeproof.device.measure import run_measure

    out = bundle.parent.parent / "reports" / "device" / profile
    assert run_measure(bundle, profile, out, None, bundle.parent / "engines") == 0
    return out


@pytest.fixture
def measured(bundle) -> Path:
    """``bundle`` measured for cpu-ci: results to judge, or to edit first."""
    return measure_bundle(bundle)


def measured_energy(bench: dict, power_w: float = 3.0, **record) -> dict:
    """The energy fields a board drawing a constant ``power_w`` over ``bench``'s own timed window writes
    (one integral: mJ/frame = W x 1000 / FPS), with ``record`` over the ``energy`` record's keys."""
    frames = bench["e2e"]["images"]
    window = round(frames / bench["fps_e2e"], 6)
    energy = {"measurable": True, "reason": None, "source": "rapl:package", "interval_ms": 100.0, "samples": 2}
    energy["inside_samples"] = 1  # the board counts the readings inside the timed window (the edge reading)
    energy.update(window_s=window, frames=frames, **record)
    mj = round(power_w * 1000.0 * window / frames, 4)
    return {"energy_mj_per_frame": mj, "power_w_mean": power_w, "power_w_peak": power_w, "energy": energy}


def set_measured_energy(path: Path, power_w: float = 3.0, **fields) -> None:
    """Edit the bench.json at ``path`` to :func:`measured_energy`, then ``fields`` over it."""
    edit_json(path, lambda d: d.update({**measured_energy(d, power_w), **fields}))


def rehash(bundle: Path) -> None:
    """Re-write ``bundle``'s manifest over its edited files: what a pull request's own build writes, so the
    bundle still verifies and only the device side's use of it can refuse it."""
    from edgeproof.device.manifest import file_entries

    def update(manifest: dict) -> None:
        manifest["files"] = file_entries(bundle)
        for entry in manifest["profiles"].values():
            if isinstance(entry, dict) and entry.get("model") in manifest["files"]:
                entry["sha256"] = manifest["files"][entry["model"]]["sha256"]

    edit_json(bundle / "manifest.json", update)
