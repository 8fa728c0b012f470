"""Device measurement and the device gate, in process (the fresh-clone hand-off is test_handoff.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeproof.device.measure import EXIT_BAD_INPUT, EXIT_CRASHED, EXIT_MACHINE, EXIT_PROVIDERS, run_measure
from edgeproof.device.providers import CPU, engine_cache_key, placement_problems, provider_list
from edgeproof.profiles import parse_profiles
from edgeproof.verdict.device import device_gate, run_device_gate
from tests.device.builders import CATEGORY_ID
from tests.device.conftest import edit_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysroot"


def _measure(bundle: Path, profile: str, sysroot: Path | None = None) -> tuple[int, Path]:
    out = bundle.parent.parent / "reports" / "device" / profile
    return run_measure(bundle, profile, out, sysroot, bundle.parent / "engines"), out


def _measured(bundle: Path, profile: str, sysroot: Path | None = None) -> Path:
    code, out = _measure(bundle, profile, sysroot)
    assert code == 0, (out / "measure.json").read_text()
    return out


def test_measure_then_gate_passes_with_the_whole_chain(bundle, tmp_path):
    code, out = _measure(bundle, "cpu-ci")
    assert code == 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["providers"]["session"] == [CPU] and bench["providers"]["nodes"][CPU] >= 3
    assert bench["model"]["samples"] == 5 and bench["e2e"]["images"] == 4
    assert [r["batch"] for r in bench["batch_sweep"]] == [1, 2]
    assert "latency_model_ms_p50" in bench["batch_sweep"][0]  # model-only, named as such everywhere
    assert bench["e2e_overlapped"]["images"] == 4 and bench["e2e_overlapped"]["prefetch"] == 1
    par = bench["e2e_parallel"]  # a frame per core on the CPU profile (the GPU profiles record why not)
    assert par == {"measured": False, "reason": "one core"} if os.cpu_count() == 1 else par["images"] == 4
    assert set(bench["latency_ms"]) >= {"p50", "p95", "p99"} and bench["engine"]["cache_dir"] is None
    detections = json.loads((out / "detections.json").read_text())
    assert len(detections) == 6 and {d["category_id"] for d in detections} == {CATEGORY_ID}
    assert detections[0]["bbox"] == pytest.approx([24, 24, 16, 16], abs=1e-3)
    ev = json.loads((out / "eval.json").read_text())
    assert not ev["scored"] and "map50" not in ev  # the runner never scores: the device gate does (below)
    code = run_device_gate(bundle, "cpu-ci", out, tmp_path / "reports/release.json")
    report = json.loads((out / "gate.json").read_text())
    assert code == 0 and report["verdict"] == "pass" and report["failed"] == []
    assert report["measured"]["map50"] == 1.0
    assert {r["name"] for r in report["rules"]} >= {"same_model_released", "same_model_benchmarked", "providers"}
    assert "PASSED" in (out / "gate.md").read_text()


def test_speed_threshold_fail_and_throttled_run_inconclusive(bundle, tmp_path):
    code, out = _measure(bundle, "cpu-ci-strict")
    assert code == 0
    assert run_device_gate(bundle, "cpu-ci-strict", out) == 1
    assert json.loads((out / "gate.json").read_text())["failed"] == ["fps"]
    code, out = _measure(bundle, "cpu-ci", FIXTURES / "x86-hot")  # the same numbers, from a hot machine
    assert code == 0
    assert run_device_gate(bundle, "cpu-ci", out) == 3
    report = json.loads((out / "gate.json").read_text())
    assert report["verdict"] == "inconclusive" and "x86_pkg_temp reached 97.0 C" in report["conditions"]["reasons"][0]
    assert "INCONCLUSIVE" in (out / "gate.md").read_text()


def test_throttling_never_hides_an_accuracy_or_identity_failure(bundle):
    out = _measured(bundle, "cpu-ci", FIXTURES / "x86-hot")
    edit_json(out / "detections.json", lambda d: [r.update(category_id=CATEGORY_ID + 1) for r in d])
    report = device_gate(bundle, "cpu-ci", out)
    assert report["verdict"] == "fail" and "map50" in report["failed"]


def test_refusals_name_the_rule(bundle):
    code, out = _measure(bundle, "jetson-nano")  # this x86-64 machine is no Jetson Nano
    status = json.loads((out / "measure.json").read_text())
    assert code == EXIT_MACHINE and status["rule"] == "machine_match" and "arch" in status["reason"]
    assert not (out / "bench.json").exists()
    report = device_gate(bundle, "jetson-nano", out)
    # the wrong board says nothing about the model: inconclusive, with what to do (and no follow-on noise)
    assert report["verdict"] == "inconclusive" and report["failed"] == ["machine_match"]
    assert "runner's labels" in report["rules"][-1]["reason"]
    code, out = _measure(bundle, "cpu-cuda")
    assert (
        code == EXIT_PROVIDERS and "CUDAExecutionProvider" in json.loads((out / "measure.json").read_text())["reason"]
    )
    report = device_gate(bundle, "cpu-cuda", out)  # the board's ORT lacks the provider: set-up, not the model
    assert report["failed"] == ["providers"] and report["verdict"] == "inconclusive"


def test_gate_checks_the_chain_against_the_release_report(bundle, tmp_path):
    out = _measured(bundle, "cpu-ci")
    release = tmp_path / "reports/release.json"
    edit_json(release, lambda d: d["profiles"]["cpu-ci"].update(sha256="e" * 64))
    assert device_gate(bundle, "cpu-ci", out, release)["failed"] == ["same_model_released"]
    edit_json(out / "bench.json", lambda d: d.update(model_sha256="d" * 64, profile="cpu-ci-strict"))
    report = device_gate(bundle, "cpu-ci", out)  # eval.json still names the run's profile: an edited bench.json
    assert report["failed"] == ["results_consistent", "same_profile", "same_model_benchmarked"]


def test_gate_on_a_tampered_bundle_fails_naming_the_file(bundle):
    out = _measured(bundle, "cpu-ci")
    model = bundle / "models/fp32.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    report = device_gate(bundle, "cpu-ci", out)
    assert report["verdict"] == "fail" and report["failed"][0] == "bundle_verified"
    assert "models/fp32.onnx: size" in report["rules"][0]["reason"]


def test_regression_rules_against_mains_last_verdict(bundle, tmp_path):
    out = _measured(bundle, "cpu-ci")
    edit_json(
        bundle / "profiles.json",
        lambda d: d["cpu-ci"].update(regression={"max_fps_drop_pct": 10.0, "max_map_drop": 0.01}),
    )
    fps = json.loads((out / "bench.json").read_text())["fps_e2e"]
    baseline = tmp_path / "main-gate.json"
    baseline.write_text(
        json.dumps({"verdict": "pass", "profile": "cpu-ci", "measured": {"fps_e2e": fps * 2, "map50_95": 1.0}})
    )
    report = device_gate(bundle, "cpu-ci", out, baseline=baseline)
    rules = {r["name"]: r for r in report["rules"]}
    assert (
        rules["regression_fps"]["measured"] == pytest.approx(50.0, abs=0.01) and not rules["regression_fps"]["passed"]
    )
    assert rules["regression_map"]["passed"]
    assert "bundle_verified" in report["failed"]  # profiles.json was changed after the bundle was built


def test_provider_checks_and_engine_cache_key():
    profiles = parse_profiles(
        {
            "trt": {
                "providers": [
                    {
                        "name": "TensorrtExecutionProvider",
                        "options": {"trt_fp16_enable": True, "trt_engine_cache_enable": True},
                    },
                    {"name": "CUDAExecutionProvider"},
                ]
            }
        }
    )
    (_name, opts), _ = provider_list(profiles["trt"], Path("/cache/k"))
    assert opts["trt_engine_cache_path"] == "/cache/k" and opts["trt_fp16_enable"] is True
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert placement_problems(wanted, {"TensorrtExecutionProvider": ["a"], "CUDAExecutionProvider": ["b"]}) == []
    cpu_nodes = placement_problems(wanted, {"TensorrtExecutionProvider": ["a"], CPU: ["NonMaxSuppression_1"]})
    assert cpu_nodes == ["1 node(s) ran on CPUExecutionProvider, not a profile provider (e.g. ['NonMaxSuppression_1'])"]
    assert placement_problems(wanted, {"CUDAExecutionProvider": ["a"]}) == [
        "no node ran on TensorrtExecutionProvider, the profile's first provider"
    ]
    base = {
        "model_sha256": "a",
        "onnxruntime": "1.19",
        "tensorrt": "10.3",
        "l4t": "36.4.3",
        "precision": "fp16",
        "input_shape": [1, 3, 256, 256],
    }
    keys = {engine_cache_key({**base, k: "other"}) for k in base} | {engine_cache_key(base)}
    assert len(keys) == len(base) + 1  # every fact changes the key


def test_creation_time_fallback_is_refused_and_cpu_fallback_disabled(bundle, monkeypatch):
    """The Jetson case: CUDA is listed as available but fails to load, and ORT retries on the CPU."""
    import onnxruntime as ort

    from edgeproof.device.providers import create_profiled_session
    from edgeproof.runtime.session import ProviderError

    seen = {}

    class FallingBack:
        def __init__(self, src, sess_options, providers, provider_options):
            seen["cpu_fallback_disabled"] = sess_options.get_session_config_entry("session.disable_cpu_ep_fallback")
            seen["providers"] = providers

        def get_providers(self):
            return [CPU]

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", CPU])
    monkeypatch.setattr(ort, "InferenceSession", FallingBack)
    profile = parse_profiles({"cuda": {"providers": [{"name": "CUDAExecutionProvider"}]}})["cuda"]
    with pytest.raises(ProviderError, match=r"\['CUDAExecutionProvider'\] were requested but the session runs on"):
        create_profiled_session(bundle / "models/fp32.onnx", profile, None)
    assert seen == {"cpu_fallback_disabled": "1", "providers": ["CUDAExecutionProvider"]}


def test_preflight_on_recorded_boards(bundle, tmp_path):
    from edgeproof.device.preflight import preflight
    from edgeproof.device.sysinfo import SysRoot

    def checks(board: str, profile: str) -> dict[str, bool]:
        report = preflight(bundle, profile, SysRoot(FIXTURES / board), tmp_path / "engines")
        assert report["ready"] == all(c["ok"] for c in report["checks"])
        return {c["name"]: c["ok"] for c in report["checks"]}

    nano = checks("jetson-nano", "jetson-nano")
    assert nano["machine_match"] and nano["power_mode"] and nano["clocks_at_max"] and nano["temperature"]
    assert not nano["providers_built_in"]  # this onnxruntime has no TensorRT/CUDA
    orin = checks("jetson-orin-nano", "jetson-orin-nano")
    assert orin["machine_match"] and not orin["clocks_at_max"] and not orin["idle"]
    assert nano["idle"]
    assert not checks("jetson-nano", "jetson-orin-nano")["machine_match"]
    hot = checks("x86-hot", "cpu-ci")
    assert hot["providers_load"] and not hot["temperature"]


def test_without_on_device_map_the_build_sides_evaluation_of_the_same_file_counts(bundle, tmp_path):
    out = _measured(bundle, "cpu-ci-build-map")
    assert not (out / "eval.json").exists()
    report = device_gate(bundle, "cpu-ci-build-map", out)
    rules = {r["name"]: r for r in report["rules"]}
    assert report["verdict"] == "pass" and rules["same_model_evaluated"]["source"] == "build/release.json"
    assert rules["map50"]["measured"] == 1.0 and rules["map50"]["source"] == "build side"


def test_a_board_without_opencv_for_a_clip_profile_is_inconclusive_not_the_bundles_fault(tmp_path, monkeypatch):
    """OpenCV missing on the board was refused as ``e2e_input``, a bundle fault, so the PR failed."""
    from edgeproof.device import video
    from tests.device.conftest import make_bundle

    def no_cv2():
        raise ImportError("video input needs OpenCV: `pip install opencv-python-headless`")

    monkeypatch.setattr(video, "import_cv2", no_cv2)
    clip_bundle = make_bundle(tmp_path / "with-clip", clip="data/sources/clip.avi")
    code, out = _measure(clip_bundle, "cpu-ci-clip")
    assert code == 5 and json.loads((out / "measure.json").read_text())["rule"] == "board_packages"
    report = device_gate(clip_bundle, "cpu-ci-clip", out)
    assert report["verdict"] == "inconclusive" and "install it, rerun" in json.dumps(report)


def test_end_to_end_on_the_bundled_clip(tmp_path, bundle):
    pytest.importorskip("cv2")
    from tests.device.conftest import make_bundle

    code, out = _measure(bundle, "cpu-ci-clip")  # the default bundle has no clip: a named refusal
    assert code == 2 and json.loads((out / "measure.json").read_text())["rule"] == "e2e_input"
    clip_bundle = make_bundle(tmp_path / "with-clip", clip="data/sources/clip.avi")
    assert json.loads((clip_bundle / "deploy.json").read_text())["clip"] == "clip/clip.avi"
    out = _measured(clip_bundle, "cpu-ci-clip")
    e2e = json.loads((out / "bench.json").read_text())["e2e"]
    assert e2e["source"] == "clip:clip.avi" and e2e["images"] == 15 and e2e["samples"] == 15  # 10 frames, looped
    assert e2e["warmup"] == 2 and e2e["prefetch"] == 1  # warm-up frames excluded as over image files
    assert device_gate(clip_bundle, "cpu-ci-clip", out)["verdict"] == "pass"


def test_a_model_whose_input_size_disagrees_with_deploy_json_is_refused_with_the_reason(bundle):
    """Issue 18: ORT raised mid-run (exit 1, no measure.json); now exit 2, rule input_size, reason written."""
    from edgeproof.device.manifest import file_entries

    edit_json(bundle / "deploy.json", lambda d: d.update(input_size=[32, 32]))
    edit_json(bundle / "manifest.json", lambda d: d.update(files=file_entries(bundle)))
    code, out = _measure(bundle, "cpu-ci")
    status = json.loads((out / "measure.json").read_text())
    assert code == EXIT_BAD_INPUT and status["status"] == "refused" and status["rule"] == "input_size"
    assert "does not take deploy.json input_size [32, 32]" in status["reason"] and "64" in status["reason"]
    assert not (out / "bench.json").exists()


def test_a_model_that_takes_uint8_pixels_is_measured_and_gated_like_any_other(tmp_path):
    """The CPU int8 takes (N, H, W, 3) uint8 pixels (optimize.input): the input-size check reads H and W from
    there, and the whole chain runs; a wrong deploy.json size is still refused, in that layout's words."""
    from edgeproof.device.manifest import file_entries
    from tests.device.conftest import make_bundle

    pixels = make_bundle(tmp_path / "pixels", pixels=True)
    code, out = _measure(pixels, "cpu-ci")
    assert code == 0, (out / "measure.json").read_text()
    assert device_gate(pixels, "cpu-ci", out)["verdict"] == "pass"
    edit_json(pixels / "deploy.json", lambda d: d.update(input_size=[32, 32]))
    edit_json(pixels / "manifest.json", lambda d: d.update(files=file_entries(pixels)))
    code, out = _measure(pixels, "cpu-ci")
    status = json.loads((out / "measure.json").read_text())
    assert code == EXIT_BAD_INPUT and status["rule"] == "input_size" and "(N, H, W, 3) uint8" in status["reason"]


def test_an_unforeseen_crash_still_writes_a_documented_status(bundle, monkeypatch):
    import edgeproof.device.measure as measure_mod

    def boom(*_a, **_k):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT")

    monkeypatch.setattr(measure_mod, "gated_run", boom)
    code, out = _measure(bundle, "cpu-ci")
    status = json.loads((out / "measure.json").read_text())
    assert code == EXIT_CRASHED and status["status"] == "crashed" and "INVALID_ARGUMENT" in status["reason"]


def test_a_refused_rerun_leaves_no_older_verdict_or_preflight_report(bundle):
    out = _measured(bundle, "cpu-ci")
    assert run_device_gate(bundle, "cpu-ci", out) == 0 and (out / "gate.md").is_file()
    (out / "preflight.json").write_text('{"ready": true}')
    code = run_measure(bundle, "cpu-ci-clip", out, None, bundle.parent / "engines")  # into the same folder: no clip
    assert code == EXIT_BAD_INPUT
    assert sorted(p.name for p in out.iterdir()) == ["conditions.json", "measure.json"]  # no older PASS gate.md
