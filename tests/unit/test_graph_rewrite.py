"""The softmax rewrite is exact: same outputs, the softmax now over the last axis."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeproof.runtime.session import create_session
from edgeproof.training.graph import softmax_last_axis


def _model(axis: int):
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=axis, name="dfl")],
        "softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16, 4, 21])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16, 4, 21])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _run(model, x):
    return create_session(model.SerializeToString(), ["CPUExecutionProvider"], "disable").run(None, {"x": x})[0]


def test_a_non_last_axis_softmax_becomes_a_last_axis_one_with_the_same_outputs():
    x = np.random.default_rng(0).normal(size=(2, 16, 4, 21)).astype(np.float32)
    for axis in (1, 2, -3):
        model = _model(axis)
        before = _run(model, x)
        assert softmax_last_axis(model) == 1
        onnx.checker.check_model(model)
        assert [n.op_type for n in model.graph.node] == ["Transpose", "Softmax", "Transpose"]
        assert model.graph.node[1].attribute[0].i == 3
        np.testing.assert_allclose(_run(model, x), before, rtol=0, atol=1e-6)


def test_a_last_axis_softmax_is_left_alone():
    model = _model(-1)
    assert softmax_last_axis(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Softmax"]
