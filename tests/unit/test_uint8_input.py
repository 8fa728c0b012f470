"""The uint8 NHWC input (issue 22): the graph's own Transpose/Cast/Div is exactly the runtime's conversion."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import as_float_nchw, to_input
from edgeproof.runtime.session import create_session
from edgeproof.training.graph import uint8_nhwc_input


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
