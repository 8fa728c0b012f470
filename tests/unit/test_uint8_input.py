"""The uint8 NHWC input (issue 22): the graph's own conversion is exactly the runtime's, and an INT8 model whose
input scale is 1/255 takes the pixels as its quantized input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeproof.config import ParamsError, parse_params
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import as_float_nchw, to_input
from edgeproof.runtime.session import create_session
from edgeproof.training.graph import PIXEL_SCALE, float_nchw_input, uint8_nhwc_input
from edgeproof.training.params import OptimizeParams


def _conv_model() -> onnx.ModelProto:
    w = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["y"], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 16, 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 16, 24])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_the_uint8_input_graph_computes_exactly_what_the_float_one_does_on_converted_pixels():
    pixels = np.random.default_rng(1).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    model = _conv_model()
    before = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all")
    want = before.run(None, {"images": to_input(list(pixels))})[0]
    uint8_nhwc_input(model)
    onnx.checker.check_model(model, full_check=True)
    after = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all")
    inp = after.get_inputs()[0]
    assert (inp.type, inp.shape) == ("tensor(uint8)", ["batch", 16, 24, 3])
    np.testing.assert_array_equal(after.run(None, {"images": pixels})[0], want)
    np.testing.assert_array_equal(as_float_nchw(pixels), to_input(list(pixels)))


def test_the_detector_feeds_a_uint8_model_its_letterboxed_pixels(fixed_detector_factory, tmp_path):
    raw = np.zeros((5, 2), np.float32)
    raw[:, 0] = [32, 32, 16, 16, 0.9]
    path = fixed_detector_factory(raw)
    model = onnx.load(str(path))
    uint8_nhwc_input(model)
    onnx.save(model, str(tmp_path / "u8.onnx"))
    ref, det = Detector(path, Postprocess(conf=0.25)), Detector(tmp_path / "u8.onnx", Postprocess(conf=0.25))
    assert det.nhwc_uint8 and det.input_size == ref.input_size == (64, 64)
    image = np.full((40, 64, 3), 90, np.uint8)
    batch, _ = det.preprocess([image])
    assert batch.dtype == np.uint8 and batch.shape == (1, 64, 64, 3)
    det.warmup()
    np.testing.assert_array_equal(det([image])[0].boxes, ref([image])[0].boxes)


def _quantized_model(scale: float) -> onnx.ModelProto:
    """images -> QuantizeLinear(scale, 0) -> DequantizeLinear -> Conv: the front of a static QDQ INT8 model."""
    model = _conv_model()
    graph = model.graph
    conv = graph.node[0]
    conv.input[0] = "images_dq"
    graph.initializer.extend(
        [numpy_helper.from_array(np.array(scale, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "z")]
    )
    graph.node.insert(0, helper.make_node("QuantizeLinear", ["images", "s", "z"], ["images_q"], name="q"))
    graph.node.insert(1, helper.make_node("DequantizeLinear", ["images_q", "s", "z"], ["images_dq"], name="dq"))
    return model


def _every_pixel_value() -> np.ndarray:
    values = np.arange(256, dtype=np.uint8)
    return np.random.default_rng(2).permutation(np.resize(values, 2 * 16 * 24 * 3)).reshape(2, 16, 24, 3)


@pytest.mark.parametrize(("scale", "how"), [(PIXEL_SCALE, "pixels_are_quantized"), (1.0 / 254.0, "converted")])
def test_an_int8_model_whose_input_scale_is_one_255th_takes_the_pixels_as_its_quantized_input(scale, how):
    """scale float32(1/255), zero point 0: every pixel value p (all 256 are fed) quantizes back to p, so the
    QuantizeLinear is dropped and the uint8 pixels go straight to the DequantizeLinear; any other scale
    keeps the float conversion. Either way the outputs are bit-identical to the float model's."""
    pixels = _every_pixel_value()
    model = _quantized_model(scale)
    before = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all")
    want = before.run(None, {"images": to_input(list(pixels))})[0]
    assert uint8_nhwc_input(model) == how
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    if how == "converted":
        assert ops[:4] == ["Transpose", "Cast", "Div", "QuantizeLinear"]
    else:
        assert ops[:2] == ["Transpose", "DequantizeLinear"] and not {"QuantizeLinear", "Cast"} & set(ops)
    after = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all")
    np.testing.assert_array_equal(after.run(None, {"images": pixels})[0], want)


def test_the_input_form_is_chosen_per_variant():
    params = OptimizeParams(input={"int8": "uint8_nhwc"})
    assert [params.input_form(v) for v in ("fp32", "int8", "int8_trt")] == ["float_nchw", "uint8_nhwc", "float_nchw"]
    assert OptimizeParams(input="uint8_nhwc").input_form("fp16") == "uint8_nhwc"
    with pytest.raises(ParamsError, match=r"optimize\.input: names \['int8'\], which optimize\.variants does not"):
        parse_params({"optimize": {"variants": ["fp32"], "input": {"int8": "uint8_nhwc"}}})
    with pytest.raises(ParamsError, match=r"optimize\.input\.int8: Input should be 'float_nchw' or 'uint8_nhwc'"):
        parse_params({"optimize": {"input": {"int8": "uint8"}}})


@pytest.mark.parametrize("scale", [PIXEL_SCALE, 1.0 / 254.0])
def test_undoing_the_pixel_prefix_gives_back_the_float_model_ultralytics_can_read(scale):
    """ultralytics' cross-check feeds float NCHW only: it reads the uint8-input model with its prefix undone."""
    model = _quantized_model(scale)
    floats = to_input(list(_every_pixel_value()))
    want = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all").run(None, {"images": floats})[0]
    assert float_nchw_input(model) is False  # already float: untouched
    uint8_nhwc_input(model)
    assert float_nchw_input(model) is True
    onnx.checker.check_model(model, full_check=True)
    after = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "all")
    inp = after.get_inputs()[0]
    assert (inp.type, inp.shape) == ("tensor(float)", ["batch", 3, 16, 24])
    np.testing.assert_array_equal(after.run(None, {"images": floats})[0], want)
    assert [n.op_type for n in model.graph.node][:2] == ["QuantizeLinear", "DequantizeLinear"]
    assert {t.name for t in model.graph.initializer} == {"w", "s", "z"}  # nothing of the prefix is left
    broken = _quantized_model(scale)
    uint8_nhwc_input(broken)
    broken.graph.node.pop(1)  # not the prefix uint8_nhwc_input wrote
    with pytest.raises(ValueError, match="not followed by the pixel prefix"):
        float_nchw_input(broken)
