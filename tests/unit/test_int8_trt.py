"""The TensorRT-compatible INT8 variant (issue 22): symmetric signed Q/DQ, never for a Maxwell Jetson."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from edgeproof.profiles import parse_profiles
from edgeproof.release.choose import choose_unmeasured
from edgeproof.release.params import ReleaseParams
from edgeproof.settings import SettingsError
from edgeproof.training.params import Int8Params
from edgeproof.training.variants import build_int8, tensorrt_int8, tensorrt_qdq_problems


def _conv_silu_model(path: Path) -> Path:
    """Conv -> SiLU (Sigmoid * x) -> Conv, named like YOLO's modules, 32 x 32 input."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w0"),
        numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b0"),
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w1"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="/model.0/conv/Conv"),
        helper.make_node("Sigmoid", ["c0"], ["s0"], name="/model.0/act/Sigmoid"),
        helper.make_node("Mul", ["c0", "s0"], ["a0"], name="/model.0/act/Mul"),
        helper.make_node("Conv", ["a0", "w1"], ["output0"], name="/model.1/conv/Conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4, 32, 32])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _images(folder: Path, n: int = 4) -> list[Path]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        out.append(folder / f"cal{i}.png")
        Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(out[-1])
    return out


def test_int8_trt_is_symmetric_signed_per_channel_and_todays_int8_is_not(tmp_path):
    fp32 = _conv_silu_model(tmp_path / "fp32.onnx")
    images = _images(tmp_path)
    params = Int8Params(exclude_head="none")
    build_int8(fp32, tmp_path / "int8.onnx", images, params)
    facts = build_int8(fp32, tmp_path / "int8_trt.onnx", images, tensorrt_int8(params), symmetric=True)
    assert facts["symmetric_activations"] is True
    assert tensorrt_qdq_problems(tmp_path / "int8_trt.onnx") == []
    todays = tensorrt_qdq_problems(tmp_path / "int8.onnx")
    assert any("zero point uint8" in p for p in todays)  # U8 activations: not TensorRT's form
    assert any("zero point int32" in p for p in todays)  # int32 bias Q/DQ: neither
    model = onnx.load(str(tmp_path / "int8_trt.onnx"))
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weight_dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0].startswith("w0")]
    assert weight_dq and consts[weight_dq[0].input[1]].shape == (8,)  # one scale per output channel (axis 0)


def test_a_non_symmetric_model_is_named_with_its_problem(tmp_path):
    fp32 = _conv_silu_model(tmp_path / "fp32.onnx")
    build_int8(fp32, tmp_path / "int8.onnx", _images(tmp_path), Int8Params(exclude_head="none"))
    problems = tensorrt_qdq_problems(tmp_path / "int8.onnx")
    assert "expected int8 0" in problems[0]


NANO = {
    "match": {"arch": ["aarch64"], "jetson_model": "Jetson Nano"},
    "providers": [{"name": "TensorrtExecutionProvider", "options": {"trt_fp16_enable": True}}],
}


def test_a_jetson_nano_profile_refuses_an_int8_variant():
    with pytest.raises(SettingsError, match=r"profiles\.jetson-nano\.variant: int8_trt on a Jetson Nano"):
        parse_profiles({"jetson-nano": {**NANO, "variant": "int8_trt"}})
    orin = {**NANO, "match": {"jetson_model": "Orin Nano"}, "variant": "int8_trt"}
    assert parse_profiles({"orin": orin})["orin"].variant == "int8_trt"
    with pytest.raises(SettingsError, match=r"profiles\.orin\.variant: int8 has uint8 activations"):
        parse_profiles({"orin": {**orin, "variant": "int8"}})


def test_tensorrt_runs_int8_trt_in_int8_mode_and_nothing_else_changes():
    orin = {**NANO, "match": {"jetson_model": "Orin Nano"}}
    profile = parse_profiles({"orin": orin})["orin"]
    int8 = profile.for_variant("int8_trt")
    assert int8.providers[0].options == {"trt_fp16_enable": True, "trt_int8_enable": True}
    assert profile.providers[0].options == {"trt_fp16_enable": True}  # the profile itself is left as it was
    assert profile.for_variant("fp32") is profile and profile.for_variant("int8") is profile
    cpu = parse_profiles({"cpu": {}})["cpu"]
    assert cpu.for_variant("int8_trt") is cpu  # no TensorRT: nothing to switch on
    table = {"trt_fp16_enable": True, "trt_int8_calibration_table_name": "calib.flatbuffers"}
    fixed = {**orin, "variant": "int8_trt", "providers": [{"name": "TensorrtExecutionProvider", "options": table}]}
    with pytest.raises(SettingsError, match=r"profiles\.orin\.providers: trt_int8_calibration_table_name"):
        parse_profiles({"orin": fixed})
    auto = parse_profiles({"orin": {**fixed, "variant": "auto"}})["orin"]  # int8_trt reaches it by the choice
    with pytest.raises(SettingsError, match="TensorRT refuses a calibration table"):
        auto.for_variant("int8_trt")


def test_the_unmeasured_rule_never_gives_a_nano_int8():
    profile = parse_profiles({"jetson-nano": NANO})["jetson-nano"]
    variants = {n: {"path": f"{n}.onnx", "sha256": n, "parity_passed": True} for n in ("fp32", "int8_trt")}
    params = ReleaseParams(unmeasured_variant="int8_trt")
    out = choose_unmeasured("jetson-nano", profile, variants, params, ["TensorrtExecutionProvider"])
    assert out["variant"] == "fp32" and out["rejected"][0]["variant"] == "int8_trt"


def test_the_cpu_int8_input_is_pinned_to_the_pixel_levels_so_it_can_take_the_pixels_themselves(tmp_path):
    """Calibration images that never reach 0 or 255 would give the input a narrower range (and round pixels
    between levels); the U8 variant pins scale 1/255 and zero point 0 instead, the symmetric one does not.
    With that, the uint8-input model drops its QuantizeLinear and still computes what the float-fed one does."""
    from edgeproof.runtime.preprocess import to_input
    from edgeproof.runtime.session import create_session
    from edgeproof.training.graph import PIXEL_SCALE, uint8_nhwc_input

    fp32 = _conv_silu_model(tmp_path / "fp32.onnx")
    grey = []
    for i in range(3):
        grey.append(tmp_path / f"grey{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(100, 150, (32, 32, 3), dtype=np.uint8)).save(grey[-1])
    params = Int8Params(exclude_head="none")
    build_int8(fp32, tmp_path / "int8.onnx", grey, params)
    build_int8(fp32, tmp_path / "int8_trt.onnx", grey, tensorrt_int8(params), symmetric=True)

    def input_quantizer(path: Path) -> tuple[float, int]:
        model = onnx.load(str(path))
        consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        q = next(n for n in model.graph.node if "images" in n.input)
        return float(consts[q.input[1]]), int(consts[q.input[2]])

    assert input_quantizer(tmp_path / "int8.onnx") == (float(PIXEL_SCALE), 0)
    assert input_quantizer(tmp_path / "int8_trt.onnx")[0] != float(PIXEL_SCALE)
    pixels = np.random.default_rng(3).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    want = create_session(tmp_path / "int8.onnx", ["CPUExecutionProvider"], "all").run(
        None, {"images": to_input(list(pixels))}
    )[0]
    model = onnx.load(str(tmp_path / "int8.onnx"))
    assert uint8_nhwc_input(model) == "pixels_are_quantized"
    got = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all").run(None, {"images": pixels})[0]
    np.testing.assert_array_equal(got, want)
