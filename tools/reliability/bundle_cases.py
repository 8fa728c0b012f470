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
from typing import Any

import yaml

from reliability import sandbox as sb
from reliability.cases import Call, Case

MODEL = "models/optimized/fp32.onnx"
BUNDLED = "models/fp32.onnx"  # where the bundle keeps the released fp32 model
PROFILE = "cpu-ci"


def _release(sha: str, profiles: list[str], maps: tuple[float, float]) -> dict:
    map50, map50_95 = maps
    fp32 = {"path": MODEL, "sha256": sha, "evaluated": True, "map50_95": map50_95, "map50": map50, "map_drop": 0.0,
            "fps_e2e": 50.0, "latency_ms_p95": 5.0, "latency_model_ms_p50": 2.0}  # fmt: skip
    choice = {"variant": "fp32", "path": MODEL, "sha256": sha, "reason": "reliability sandbox", "rejected": []}
    return {
        "build_profile": PROFILE,
        "release_variant": "fp32",
        "reference": {"variant": "fp32", "path": MODEL, "sha256": sha, "map50_95": map50_95, "map50": map50},
        "variants": {"fp32": fp32},
        "profiles": {p: {**choice, "measured_here": p == PROFILE} for p in profiles},
    }


def build_bundle_repo(repo: Path, passing: bool = False) -> Path:
    """A build side under ``repo`` and its bundle at ``repo/release/bundle``; returns the bundle.

    ``passing``: honest device results pass the device gate: the model finds two confident boxes per image
    (neither on the synthetic truth: mAP 0), the build side reports that mAP, and cpu-ci's mAP50 floor is 0.
    Then a forged result is the only reason for a ``fail``.
    """
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
    sha = sha256_file(sb.onnx_model(repo / MODEL, boxes=passing))
    maps = (0.0, 0.0) if passing else (0.9, 0.5)
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())["profiles"]
    if passing:  # 3 val images: judged over what they are (gate.min_val_*), as the mAP floor is 0
        raw[PROFILE]["gate"].update(min_map50=0.0, min_val_images=1, min_val_boxes_per_class=1)
    profiles = parse_profiles(raw)
    metrics = {"eval": {"model_sha256": sha, "map50": maps[0], "map50_95": maps[1]},
               "bench": {"model_sha256": sha, "fps_e2e": 50.0, "latency_ms": {"p95": 5.0}}}  # fmt: skip
    for name, data in metrics.items():
        (repo / "metrics").mkdir(exist_ok=True)
        (repo / "metrics" / f"{name}.json").write_text(json.dumps(data))
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports" / "release.json").write_text(json.dumps(_release(sha, list(profiles), maps)))
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


def _input_size_disagrees(repo: Path) -> Call:
    """deploy.json asks for 32x32 while the model takes 64x64; the manifest is rewritten so it still verifies
    (a consistent but wrong bundle): the input-size check, not the tamper check, must refuse."""
    from edgeproof.device.manifest import file_entries
    from edgeproof.device.measure import EXIT_BAD_INPUT

    bundle = build_bundle_repo(repo)
    _edit(bundle / "deploy.json", lambda d: d.update(input_size=[32, 32]))
    _edit(bundle / "manifest.json", lambda d: d.update(files=file_entries(bundle)))
    argv = ["measure", *_RESULTS, "--out", RESULTS]
    return Call("device", argv, ("input_size", "deploy.json"), exit_code=EXIT_BAD_INPUT,
                report=(f"{RESULTS}/measure.json", "rule", "input_size"))  # fmt: skip


def _edit(path: Path, fn: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _forged(forge: Callable[[Path, Path], None], *needles: str) -> Callable[[Path], Call]:
    """Honest device results (``run_measure`` on this machine), then edited by ``forge(bundle, results)``:
    ``edgeproof device-gate`` must write a ``fail`` verdict (exit 1) naming why, never pass, never crash."""

    def build(repo: Path) -> Call:
        from edgeproof.device.measure import run_measure

        bundle = build_bundle_repo(repo, passing=True)
        results = repo / RESULTS
        code = run_measure(bundle, PROFILE, results, None, repo / "release" / "engines")
        if code != 0:
            raise RuntimeError(f"the honest measurement failed (exit {code}): {(results / 'measure.json').read_text()}")
        forge(bundle, results)
        return Call("cli", ["device-gate", *_RESULTS], needles, exit_code=1,
                    report=(f"{RESULTS}/gate.json", "verdict", "fail"))  # fmt: skip

    return build


def _huge_fps(bundle: Path, results: Path) -> None:
    _edit(results / "bench.json", lambda d: d.update(fps_e2e=1e300))


def _infinite_fps(bundle: Path, results: Path) -> None:
    _edit(results / "bench.json", lambda d: d.update(fps_e2e="@INF@"))
    text = (results / "bench.json").read_text().replace('"@INF@"', "Infinity")
    (results / "bench.json").write_text(text)  # what json.dumps(allow_nan=True) writes and json.loads reads


def _detections_outside(bundle: Path, results: Path) -> None:
    outside = results.parents[3] / "elsewhere.json"  # beside the repo, outside the results folder
    outside.write_text((results / "detections.json").read_text())
    _edit(results / "eval.json", lambda d: d.update(detections_file="../../../../elsewhere.json"))


def _ground_truth_copied(bundle: Path, results: Path) -> None:
    gt = json.loads((bundle / "val" / "annotations.json").read_text())
    keep = ("image_id", "category_id", "bbox")
    forged = [{**{k: a[k] for k in keep}, "score": 0.99} for a in gt["annotations"]]
    (results / "detections.json").write_text(json.dumps(forged))


RESULTS = f"reports/device/{PROFILE}"
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
    Case(
        "bundle-input-size-measure",
        "a bundle whose deploy.json input_size (32x32) disagrees with its model's (64x64), manifest consistent",
        _input_size_disagrees,
    ),
    Case(
        "gate-forged-fps-1e300",
        "device results with fps_e2e 1e300, given to `edgeproof device-gate`",
        _forged(_huge_fps, "rule fps invalid", "outside the possible range"),
    ),
    Case(
        "gate-forged-fps-infinity",
        "device results with fps_e2e Infinity in bench.json, given to `edgeproof device-gate`",
        _forged(_infinite_fps, "rule fps invalid", "fps_e2e: Infinity is not a finite number"),
    ),
    Case(
        "gate-forged-detections-outside",
        "eval.json detections_file pointing outside the results folder, given to `edgeproof device-gate`",
        _forged(_detections_outside, "rule detections invalid", "outside the results folder"),
    ),
    Case(
        "gate-forged-ground-truth",
        "the bundle's ground truth copied in as the detections, given to `edgeproof device-gate`",
        _forged(_ground_truth_copied, "rule detections_reproduced invalid", "does not produce these detections"),
    ),
]
