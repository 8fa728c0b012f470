"""TensorRT is measured on the engine that ships (issue 17.8), through a fake ORT session.

The fake delegates inference to a real CPU session, reports the requested providers as running,
writes an ``.engine`` file into the cache folder it is given, and logs every run's batch size, so
the order (gated figures first, at the profile's batch; the sweep afterwards in its own session and
cache folder) and the options each session got are visible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import onnxruntime as ort
import pytest

from edgeproof.device.measure import run_measure
from edgeproof.device.providers import TRT, cpu_fallback_guard, tensorrt_version
from edgeproof.device.sysinfo import SysRoot

REAL_SESSION = ort.InferenceSession


class FakeTrtSession:
    """A session "on TensorRT": real CPU inference, the requested providers reported as running."""

    sessions: ClassVar[list[FakeTrtSession]] = []
    log: ClassVar[list[tuple[int, int]]] = []  # (session index, batch) per run

    def __init__(self, path, sess_options=None, providers=None, provider_options=None):
        self.inner = REAL_SESSION(str(path), providers=["CPUExecutionProvider"])
        self.providers = list(providers or [])
        self.options = dict((provider_options or [{}])[0]) if self.providers[:1] == [TRT] else {}
        self.profile_prefix = (
            sess_options.profile_file_prefix if sess_options and sess_options.enable_profiling else None
        )
        self.index = len(FakeTrtSession.sessions)
        FakeTrtSession.sessions.append(self)
        cache = self.options.get("trt_engine_cache_path")
        if cache and not list(Path(cache).glob("*.engine")):
            (Path(cache) / f"model_{self.index}.engine").write_bytes(b"\0" * 2 * 1024 * 1024)

    def get_inputs(self):
        return self.inner.get_inputs()

    def get_outputs(self):
        return self.inner.get_outputs()

    def get_modelmeta(self):
        return self.inner.get_modelmeta()

    def get_providers(self):
        return self.providers

    def run(self, names, feeds):
        if self.providers[:1] == [TRT]:
            FakeTrtSession.log.append((self.index, int(next(iter(feeds.values())).shape[0])))
        return self.inner.run(names, feeds)

    def end_profiling(self):
        path = Path(f"{self.profile_prefix}_fake.json")
        events = [{"cat": "Node", "name": "conv_kernel_time", "args": {"provider": TRT}}]
        path.write_text(json.dumps(events))
        return str(path)


@pytest.fixture
def fake_trt(monkeypatch):
    FakeTrtSession.sessions, FakeTrtSession.log = [], []
    monkeypatch.setattr(ort, "InferenceSession", FakeTrtSession)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, "CUDAExecutionProvider", "CPUExecutionProvider"])

    def with_version(version: str) -> None:
        monkeypatch.setattr(ort, "__version__", version)

    return with_version


def _measure(bundle: Path) -> tuple[dict, Path]:
    out, cache = bundle.parent / "out", bundle.parent / "engines"
    code = run_measure(bundle, "cpu-trt-fake", out, None, cache)
    assert code == 0, (out / "measure.json").read_text()
    return json.loads((out / "bench.json").read_text()), cache


def test_gated_figures_first_on_an_engine_for_the_profiles_batch_then_the_sweep_in_its_own_cache(bundle, fake_trt):
    fake_trt("1.20.1")
    bench, cache = _measure(bundle)
    trt_sessions = [s for s in FakeTrtSession.sessions if s.providers[:1] == [TRT]]
    placement, gated, sweep = trt_sessions  # profiled placement run, the gated session, the sweep session
    for s in (placement, gated):
        assert {k: s.options[k] for k in s.options if k.startswith("trt_profile_")} == {
            "trt_profile_min_shapes": "images:1x3x64x64",
            "trt_profile_opt_shapes": "images:1x3x64x64",
            "trt_profile_max_shapes": "images:1x3x64x64",
        }
    assert sweep.options["trt_profile_min_shapes"] == "images:1x3x64x64"
    assert sweep.options["trt_profile_max_shapes"] == "images:4x3x64x64"
    assert gated.options["trt_timing_cache_enable"] is True
    assert gated.options["trt_timing_cache_path"] == gated.options["trt_engine_cache_path"]
    assert sweep.options["trt_engine_cache_path"] != gated.options["trt_engine_cache_path"]
    assert Path(gated.options["trt_engine_cache_path"]).parent == cache
    # every gated run (model-only, end to end) at batch 1 before the sweep session ran anything
    first_sweep = next(i for i, (s, _b) in enumerate(FakeTrtSession.log) if s == sweep.index)
    assert {b for s, b in FakeTrtSession.log[:first_sweep]} == {1}
    assert {s for s, _b in FakeTrtSession.log[:first_sweep]} == {placement.index, gated.index}
    assert {b for s, b in FakeTrtSession.log[first_sweep:]} == {1, 2, 4}
    assert [r["batch"] for r in bench["batch_sweep"]] == [1, 2, 4]
    e = bench["engine"]
    assert e["profile_shapes"]["trt_profile_max_shapes"] == "images:1x3x64x64" and e["reason"] is None
    assert e["cache_dir"] == gated.options["trt_engine_cache_path"] and e["sweep_cache_dir"] != e["cache_dir"]
    assert e["facts"]["trt_options"]["trt_fp16_enable"] is True and "tensorrt" in e["facts"]
    assert e["tensorrt"]["version"] is None and "libnvinfer" in e["tensorrt"]["reason"]  # none on this machine
    assert bench["engine_mb"] == 2.097  # the gated engine only (2 MiB: 2.097 MB of 10^6 bytes)
    assert bench["providers"]["cpu_fallback"]["disable_cpu_ep_fallback"] is True


def test_onnxruntime_before_1_16_gets_no_shape_profiles_and_says_so(bundle, fake_trt):
    fake_trt("1.11.0")  # the Jetson Nano's last ORT: it rejects trt_profile_* and timing-cache options
    bench, _cache = _measure(bundle)
    for s in FakeTrtSession.sessions:
        assert not [k for k in s.options if k.startswith(("trt_profile_", "trt_timing_cache"))]
    assert "ORT 1.11.0 < 1.16" in bench["engine"]["reason"] and bench["engine"]["profile_shapes"] is None
    assert "profiler node check only" in bench["providers"]["cpu_fallback"]["how"]


def test_the_engine_cache_key_changes_with_every_tensorrt_option_and_version(bundle, fake_trt):
    from edgeproof.device import engine
    from edgeproof.device.measure import load_profile

    profile = load_profile(bundle, "cpu-trt-fake")
    entry = {"sha256": "a" * 64, "variant": "fp16"}
    plan = {"ort": "1.20.1", "tensorrt": {"version": "10.3.0"}, "gated": {"trt_profile_min_shapes": "x:1"}}
    key = engine.cache_folder(Path("/c"), profile, entry, {}, plan, "gated")[1]["key"]
    other_trt = engine.cache_folder(Path("/c"), profile, entry, {}, {**plan, "tensorrt": {"version": "8.6"}}, "gated")
    other_shape = engine.cache_folder(Path("/c"), profile, entry, {}, {**plan, "gated": {"x": "y"}}, "gated")
    assert len({key, other_trt[1]["key"], other_shape[1]["key"]}) == 3


def test_tensorrt_version_from_the_soname_or_the_header(tmp_path):
    lib = tmp_path / "usr/lib/aarch64-linux-gnu"
    lib.mkdir(parents=True)
    (tmp_path / "commands").mkdir()
    assert tensorrt_version(SysRoot(tmp_path))["version"] is None
    header = tmp_path / "usr/include/aarch64-linux-gnu/NvInferVersion.h"
    header.parent.mkdir(parents=True)
    header.write_text(
        "#define TRT_MAJOR_ENTERPRISE 10\n#define TRT_MINOR_ENTERPRISE 3\n#define TRT_PATCH_ENTERPRISE 0\n"
    )
    assert tensorrt_version(SysRoot(tmp_path)) == {
        "version": "10.3.0",
        "source": str(header)[len(str(tmp_path)) :],
        "reason": None,
    }
    for name in ("libnvinfer.so", "libnvinfer.so.8", "libnvinfer.so.8.2.1"):
        (lib / name).write_bytes(b"")
    got = tensorrt_version(SysRoot(tmp_path))
    assert got["version"] == "8.2.1" and got["source"] == "soname libnvinfer.so.8.2.1"


def test_cpu_fallback_guard_by_version():
    assert cpu_fallback_guard("1.16.0", [TRT])["disable_cpu_ep_fallback"] is True
    assert cpu_fallback_guard("1.11.0", [TRT])["disable_cpu_ep_fallback"] is False
    assert "not needed" in cpu_fallback_guard("1.11.0", ["CPUExecutionProvider"])["how"]


TRTEXEC = Path(__file__).resolve().parents[1] / "fixtures" / "trtexec" / "orin-fp16.txt"


def test_trtexec_summary_is_parsed_host_latency_not_h2d():
    from edgeproof.device.ceiling import parse_trtexec

    got = parse_trtexec(TRTEXEC.read_text())
    assert got == {"latency_ms_mean": 2.5, "latency_ms_median": 2.45, "gpu_compute_ms_mean": 2.25}
    assert parse_trtexec("&&&& FAILED TensorRT.trtexec")["latency_ms_mean"] is None


def _fake_trtexec(tmp_path: Path, monkeypatch) -> None:
    """A ``trtexec`` on PATH that records its arguments in ``tmp_path/args.txt`` and prints the Orin fixture."""
    exe = tmp_path / "bin" / "trtexec"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args.txt\ncat {TRTEXEC}\n')
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}:{__import__('os').environ['PATH']}")


def test_trtexec_ceiling_runs_once_on_the_same_file_precision_and_shape(bundle, fake_trt, tmp_path, monkeypatch):
    fake_trt("1.20.1")
    _fake_trtexec(tmp_path, monkeypatch)
    bench, _cache = _measure(bundle)
    args = (tmp_path / "args.txt").read_text().split()
    assert "--fp16" in args and "--shapes=images:1x3x64x64" in args
    assert args[0] == f"--onnx={bundle / bench['model_path']}"
    assert bench["trtexec"]["ran"] and bench["trtexec"]["latency_ms_mean"] == 2.5
    assert bench["trtexec_ratio"] == pytest.approx(bench["model"]["mean"] / 2.5, abs=1e-4)


def test_an_int8_trt_model_gets_tensorrt_int8_mode_on_every_session_and_in_trtexec(
    bundle, fake_trt, tmp_path, monkeypatch
):
    from edgeproof.device import measure

    fake_trt("1.20.1")
    shipped = measure.profile_model

    def as_int8_trt(root, manifest, profile):  # the same file, shipped as the TensorRT INT8 variant
        return {**shipped(root, manifest, profile), "variant": "int8_trt"}

    monkeypatch.setattr(measure, "profile_model", as_int8_trt)
    _fake_trtexec(tmp_path, monkeypatch)
    bench, _cache = _measure(bundle)
    trt_sessions = [s for s in FakeTrtSession.sessions if s.providers[:1] == [TRT]]
    assert len(trt_sessions) == 3 and all(s.options["trt_int8_enable"] is True for s in trt_sessions)
    assert all("trt_int8_calibration_table_name" not in s.options for s in trt_sessions)
    assert "--int8" in (tmp_path / "args.txt").read_text().split()
    assert bench["variant"] == "int8_trt" and bench["engine"]["facts"]["trt_options"]["trt_int8_enable"] is True


def test_no_trtexec_no_ratio_and_the_reason(bundle, fake_trt):
    fake_trt("1.20.1")
    bench, _cache = _measure(bundle)
    assert bench["trtexec_ratio"] is None and "trtexec not found" in bench["trtexec"]["reason"]


def test_a_static_batch_model_gets_no_shape_profile_and_its_own_batch(bundle, tmp_path):
    from edgeproof.device import engine
    from edgeproof.device.measure import load_profile
    from tests.conftest import make_fixed_detector
    from tests.device.builders import IMGSZ, fixed_raw

    static = make_fixed_detector(tmp_path / "static.onnx", fixed_raw(), IMGSZ, {0: "thing"}, batch=2)
    profile = load_profile(bundle, "cpu-trt-fake")
    plan = engine.plan(profile, static, (IMGSZ, IMGSZ), "1.20.1", SysRoot())
    assert plan["gated"] is None and plan["sweep"] is None and plan["shape"] == "images:2x3x64x64"
    _folder, info = engine.cache_folder(tmp_path, profile, {"sha256": "a", "variant": "fp16"}, {}, plan, "gated")
    assert info["reason"] == "static input shape: TensorRT needs no shape profile"


def test_a_model_that_takes_uint8_pixels_gets_nhwc_shapes_for_tensorrt(tmp_path):
    """optimize.input: uint8_nhwc gives a (B, H, W, 3) input: the shape profiles and trtexec's --shapes follow it."""
    from onnx import TensorProto, helper

    from edgeproof.device.engine import model_input
    from edgeproof.device.providers import shape_text, trt_shape_options

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["out"])],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", 64, 48, 3])],
        [helper.make_tensor_value_info("out", TensorProto.UINT8, ["batch", 64, 48, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "u8.onnx"
    path.write_bytes(model.SerializeToString())
    name, shape, nhwc = model_input(path)
    assert (name, shape[1:], nhwc) == ("images", [64, 48, 3], True)
    assert shape_text(name, (64, 48), 2, nhwc) == "images:2x64x48x3"
    assert trt_shape_options(name, (64, 48), (1, 1, 4), nhwc)["trt_profile_max_shapes"] == "images:4x64x48x3"
    assert shape_text(name, (64, 48), 2) == "images:2x3x64x48"
