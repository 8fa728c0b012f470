"""A tampered hand-off bundle fed to the device side: ``python -m edgeproof.device measure`` and
``edgeproof device-gate`` must refuse it, naming the changed file.

The bundle is built by the real bundle code from a tiny build side: a two-class synthetic val split,
the sandbox's constant-output ONNX "detector" as the released fp32 model, and a ``reports/release.json``
in the shared contract's shape. Then one byte of the bundled model is flipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from reliability import sandbox as sb
from reliability.cases import Call, Case

MODEL = "models/optimized/fp32.onnx"
BUNDLED = "models/fp32.onnx"  # where the bundle keeps the released fp32 model
PROFILE = "cpu-ci"


def _release(sha: str, profiles: list[str]) -> dict:
    fp32 = {"path": MODEL, "sha256": sha, "evaluated": True, "map50_95": 0.5, "map50": 0.9, "map_drop": 0.0,
            "fps_e2e": 50.0, "latency_ms_p95": 5.0, "latency_model_ms_p50": 2.0}  # fmt: skip
    choice = {"variant": "fp32", "path": MODEL, "sha256": sha, "reason": "reliability sandbox", "rejected": []}
    return {
        "build_profile": PROFILE,
        "release_variant": "fp32",
        "reference": {"variant": "fp32", "path": MODEL, "sha256": sha, "map50_95": 0.5, "map50": 0.9},
        "variants": {"fp32": fp32},
        "profiles": {p: {**choice, "measured_here": p == PROFILE} for p in profiles},
    }


def build_bundle_repo(repo: Path) -> Path:
    """A build side under ``repo`` and its bundle at ``repo/release/bundle``; returns the bundle."""
    from edgeproof.bundle import BundleParams, build_bundle
    from edgeproof.config import parse_params
    from edgeproof.data.synthetic import generate
    from edgeproof.io import sha256_file
    from edgeproof.profiles import parse_profiles
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.scoring import ScoringSettings
    from reliability.runner import PROJECT

    synthetic = {"n_train": 2, "n_val": 3, "image_size": 64, "classes": ["circle", "square"]}
    generate(parse_params({"data": {"synthetic": synthetic}}).data.synthetic, 0, repo / "data" / "prepared")
    sha = sha256_file(sb.onnx_model(repo / MODEL))
    profiles = parse_profiles(yaml.safe_load((PROJECT / "params.yaml").read_text())["profiles"])
    metrics = {"eval": {"model_sha256": sha, "map50": 0.9, "map50_95": 0.5},
               "bench": {"model_sha256": sha, "fps_e2e": 50.0, "latency_ms": {"p95": 5.0}}}  # fmt: skip
    for name, data in metrics.items():
        (repo / "metrics").mkdir(exist_ok=True)
        (repo / "metrics" / f"{name}.json").write_text(json.dumps(data))
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports" / "release.json").write_text(json.dumps(_release(sha, list(profiles))))
    build_bundle(
        out=repo / "release" / "bundle",
        release_path=repo / "reports" / "release.json",
        build_metrics={k: repo / "metrics" / f"{k}.json" for k in metrics},
        data_dir=repo / "data" / "prepared",
        deploy=DeploySettings(),
        profiles=profiles,
        scoring=ScoringSettings(),
        params=BundleParams(),
        root=repo,
    )
    sb.write_params(repo, {})
    return repo / "release" / "bundle"


def _tampered(entry: str, argv: list[str]) -> Callable[[Path], Call]:
    def build(repo: Path) -> Call:
        model = build_bundle_repo(repo) / BUNDLED
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
        return Call(entry, argv, (BUNDLED,))

    return build


_RESULTS = ["--profile", PROFILE, "--bundle", "release/bundle"]
BUNDLE_CASES = [
    Case(
        "bundle-tampered-measure",
        "a hand-off bundle with one flipped byte in its model, given to `python -m edgeproof.device measure`",
        _tampered("device", ["measure", *_RESULTS, "--out", "reports/device/cpu-ci"]),
    ),
    Case(
        "bundle-tampered-device-gate",
        "a hand-off bundle with one flipped byte in its model, given to `edgeproof device-gate`",
        _tampered("cli", ["device-gate", *_RESULTS]),
    ),
]
