"""The ONNX Runtime detector end to end on a model with a known output."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.session import ProviderError, create_session


def _raw_one_box():
    # one anchor at model-input (32, 32) size 16x16 with class 1 score 0.9; a second weak anchor
    raw = np.zeros((6, 3), np.float32)
    raw[:, 0] = [32, 32, 16, 16, 0.05, 0.9]
    raw[:, 1] = [10, 10, 4, 4, 0.1, 0.0]
    raw[:, 2] = [33, 32, 16, 16, 0.0, 0.85]  # near-duplicate of anchor 0: NMS removes it
    return raw


def test_detector_reads_metadata_and_maps_boxes_back(fixed_detector_factory):
    model = fixed_detector_factory(_raw_one_box(), imgsz=64, names={0: "cat", 1: "dog"})
    det = Detector(model, Postprocess(conf=0.25, iou=0.5))
    assert det.input_size == (64, 64) and det.fixed_batch is None
    assert det.names == {0: "cat", 1: "dog"}
    img = np.zeros((100, 200, 3), np.uint8)  # letterbox: scale 0.32, pad_y 16
    (out,) = det([img])
    assert out.classes.tolist() == [1]
    assert out.scores == pytest.approx([0.9])
    # model-input box (24, 24, 40, 40) -> original ((24-0)/0.32, (24-16)/0.32, ...)
    assert out.boxes[0] == pytest.approx([75.0, 25.0, 125.0, 75.0], abs=1e-3)


def test_detector_batches_images_of_different_sizes(fixed_detector_factory):
    det = Detector(fixed_detector_factory(_raw_one_box()), Postprocess(conf=0.25))
    images = [np.zeros((64, 64, 3), np.uint8), np.zeros((128, 64, 3), np.uint8), np.zeros((30, 90, 3), np.uint8)]
    outs = det(images)
    assert [len(o) for o in outs] == [1, 1, 1]
    assert outs[0].boxes[0] == pytest.approx([24, 24, 40, 40])
    assert outs[1].boxes[0] == pytest.approx([16, 48, 48, 80])  # scale 0.5, pad_x 16


def test_static_batch_model_gets_padded_batches(fixed_detector_factory):
    det = Detector(fixed_detector_factory(_raw_one_box(), batch=4), Postprocess(conf=0.25))
    assert det.fixed_batch == 4
    batch, lbs = det.preprocess([np.zeros((64, 64, 3), np.uint8)] * 3)
    assert batch.shape == (4, 3, 64, 64) and len(lbs) == 3
    assert not batch[3].any()  # the padding row is zeros
    outs = det([np.zeros((64, 64, 3), np.uint8)] * 5)  # two calls: 4 images, then 1 padded to 4
    assert [len(o) for o in outs] == [1] * 5


def test_unavailable_provider_is_an_error_not_a_fallback(fixed_detector_factory):
    model = fixed_detector_factory(_raw_one_box())
    with pytest.raises(ProviderError, match="TensorrtExecutionProvider"):
        create_session(model, ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    session = create_session(model, ["CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_silent_fallback_at_session_creation_is_an_error(fixed_detector_factory, monkeypatch):
    """The Jetson case: the CUDA provider is listed as available but fails to load (missing
    libraries), and ONNX Runtime quietly runs the session on the CPU instead."""
    import onnxruntime as ort

    real_session = ort.InferenceSession

    class FallingBack(real_session):
        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(
        ort,
        "InferenceSession",
        lambda src, sess_options, providers: FallingBack(src, sess_options, ["CPUExecutionProvider"]),
    )
    model = fixed_detector_factory(_raw_one_box())
    with pytest.raises(ProviderError, match=r"\['CUDAExecutionProvider'\] were requested but the session runs on"):
        create_session(model, ["CUDAExecutionProvider", "CPUExecutionProvider"])


def test_unloadable_model_names_the_file(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ValueError, match=r"broken\.onnx: onnxruntime cannot load this model"):
        create_session(bad, ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match=r"missing\.onnx"):
        create_session(tmp_path / "missing.onnx", ["CPUExecutionProvider"])


def test_the_hash_is_of_the_bytes_the_session_runs(fixed_detector_factory, tmp_path):
    """Issue 12, defect 9: replacing the file after the session is built must not change the reported digest."""
    import hashlib

    model = fixed_detector_factory(_raw_one_box())
    loaded = hashlib.sha256(model.read_bytes()).hexdigest()
    det = Detector(model, Postprocess(conf=0.25))
    model.write_bytes(b"replaced while the detector was running")
    assert det.sha256 == loaded
    assert len(det([np.zeros((64, 64, 3), np.uint8)])[0]) == 1  # the session still runs the loaded model


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ({"in_shape": (1, 1, 64, 64)}, "1 channels, expected 3"),
        ({"in_shape": (1, 3, 64)}, "rank 3, expected 4"),
        ({"in_type": "int8"}, "element type tensor(int8)"),
        ({"out_rows": 3}, "3 rows, expected 4 box rows"),
        ({"out_rows": 7}, "7 rows, expected 4 + 2 classes"),  # the model's names say 2 classes
    ],
)
def test_a_model_that_is_not_an_image_detector_is_refused_at_load_naming_the_file(tmp_path, signature, message):
    from reliability.sandbox import onnx_model

    path = onnx_model(tmp_path / "odd.onnx", **signature)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        Detector(path)
    assert str(path) in str(err.value)


def test_a_float16_input_model_is_fed_float16(tmp_path):
    from reliability.sandbox import onnx_model

    det = Detector(onnx_model(tmp_path / "half.onnx", in_type="float16", boxes=True), Postprocess(conf=0.25))
    assert det.input_dtype == np.float16 and det.output_rows == 6
    (out,) = det([np.zeros((64, 64, 3), np.uint8)])
    assert sorted(out.classes.tolist()) == [0, 1]


def test_an_output_layout_not_stated_in_the_graph_is_checked_at_inference(tmp_path):
    from reliability.sandbox import onnx_model

    det = Detector(onnx_model(tmp_path / "ok.onnx"))
    # as if the graph's output dims were symbolic (nothing to check at load): the layout is checked per run
    det.session = create_session(onnx_model(tmp_path / "odd.onnx", out_rows=3), ["CPUExecutionProvider"])
    det.output_rows = None
    with pytest.raises(ValueError, match=r"not a detector: output shape \(1, 3, 84\)") as err:
        det([np.zeros((64, 64, 3), np.uint8)])
    assert str(det.model_path) in str(err.value)


def test_the_input_size_is_read_from_the_model_with_no_default(tmp_path, fixed_detector_factory):
    from edgeproof.runtime.detector import input_size, read_input_size

    assert read_input_size(fixed_detector_factory(_raw_one_box(), imgsz=64, names={0: "a", 1: "b"})) == (64, 64)
    assert input_size(["batch", 3, "h", "w"], {"imgsz": [96, 128]}, "m.onnx") == (96, 128)  # the exported size
    for dynamic in (["batch", 3, "h", "w"], [1, 3, -1, -1]):  # ONNX Runtime's and the ONNX proto's spelling
        with pytest.raises(ValueError, match=r"^m.onnx: input has dynamic height/width and no 'imgsz' metadata"):
            input_size(dynamic, {}, "m.onnx")


def test_the_mlflow_input_example_does_not_guess_640(tmp_path, fixed_detector_factory):
    import onnx

    from edgeproof.tracking.mlflow_model import signature_and_example

    model = onnx.load(fixed_detector_factory(_raw_one_box(), imgsz=64, names={0: "a", 1: "b"}))
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("h", "w"), strict=True):
        dim.dim_param = name
    assert signature_and_example(model)[1]["images"].shape == (1, 3, 64, 64)
    del model.metadata_props[:]  # no imgsz: the size is unknown, not 640
    with pytest.raises(ValueError, match="no 'imgsz' metadata"):
        signature_and_example(model)


def test_a_model_with_external_data_is_refused_naming_the_file_and_where_its_weights_are(
    tmp_path, fixed_detector_factory, monkeypatch
):
    """Findings review, 1: the sha256 is of the .onnx bytes only, and a session built from bytes took the
    weights file from the current folder: two folders with one graph file and different weights gave one
    digest and two results. Such a model is refused (one rule with the device's bundle check)."""
    import onnx

    folders = [tmp_path / "ext", tmp_path / "ext_other"]
    for folder, score in zip(folders, (0.9, 0.3), strict=True):
        folder.mkdir()
        graph = onnx.load(fixed_detector_factory(_raw_one_box()))
        graph.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(_scaled(score), "fixed"))
        # the 72-byte output constant goes to model.onnx.data, the small ones stay in the graph file
        external = {"save_as_external_data": True, "size_threshold": 64, "location": "model.onnx.data"}
        onnx.save(graph, str(folder / "model.onnx"), **external)
    assert (folders[0] / "model.onnx").read_bytes() == (folders[1] / "model.onnx").read_bytes()
    monkeypatch.chdir(folders[1])  # ORT would have read ext_other's weights for ext's model
    with pytest.raises(ValueError, match=r"ext/model\.onnx: 1 tensor\(s\) keep their data outside the file") as err:
        Detector(folders[0] / "model.onnx")
    assert "model.onnx.data" in str(err.value) and "'fixed'" in str(err.value)


def _scaled(score: float) -> np.ndarray:
    raw = _raw_one_box()
    raw[5, 0] = score
    return raw[None]


def _with_metadata(path, names=None, task=None):
    """The model at ``path`` with its ``names`` metadata replaced (None: removed) and a ``task`` added."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props if p.key != "names"}
    props.update({"names": names} if names is not None else {})
    props.update({"task": task} if task is not None else {})
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("raw_shape", "names", "message"),
    [
        ((90, 7), None, r"90 rows for 7 anchors, and no class names.*\(90, 7\) looks transposed"),
        ((300, 6), None, r"300 rows for 6 anchors, .*an export with NMS built in .*re-export without nms=True"),
        ((90, 7), "{0: 'a', 1: 'b', 2: 'c'}", r"90 rows, expected 4 \+ 3 classes .*\(90, 7\) looks transposed"),
        ((300, 6), "{0: 'a', 1: 'b', 2: 'c'}", r"300 rows, expected 4 \+ 3 .*re-export without nms=True"),
        ((8, 84), "{0: 'a', 1: 'b', 2: 'c'}", r"8 rows, .*one row more than 4 \+ classes: an objectness row"),
        ((39, 84), "{0: 'a', 1: 'b', 2: 'c'}", r"39 rows, .*a segmentation model's mask coefficients"),
    ],
)
def test_a_transposed_or_nms_output_is_refused_saying_what_it_looks_like(
    fixed_detector_factory, raw_shape, names, message
):
    """Findings review, 2 and 7: without names a transposed (anchors, 4 + nc) or NMS (max_det, 6) output was
    decoded as it came (boxes at class '1310', score 669); with names every layout got one message."""
    raw = np.full(raw_shape, 0.5, np.float32)
    path = _with_metadata(fixed_detector_factory(raw), names=names)
    with pytest.raises(ValueError, match=message) as err:
        Detector(path)
    assert str(path) in str(err.value) and "not a detector" in str(err.value)


def test_a_transposed_output_the_graph_does_not_state_is_refused_on_the_run(tmp_path, fixed_detector_factory):
    det = Detector(_with_metadata(fixed_detector_factory(np.zeros((6, 84), np.float32)), names=None))
    # as if the graph's output dims were symbolic (nothing to check at load): the layout is checked per run
    det.session = create_session(fixed_detector_factory(np.zeros((84, 6), np.float32)), ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match=r"output shape \(1, 84, 6\) .*84 rows for 6 anchors") as err:
        det([np.zeros((64, 64, 3), np.uint8)])
    assert str(det.model_path) in str(err.value)


def test_class_rows_that_are_not_scores_are_refused_on_the_first_run(fixed_detector_factory, caplog):
    """Findings review, 2: a model without names is run (with a warning), but an output whose class rows are
    no scores in [0, 1] (box coordinates, logits) is refused on its first run rather than decoded."""
    raw = _raw_one_box()
    raw = np.concatenate([raw, raw, raw], axis=1)  # more anchors than rows: the layout cannot be told apart
    fine = _with_metadata(fixed_detector_factory(raw), names=None)
    with caplog.at_level("WARNING"):
        det = Detector(fine, Postprocess(conf=0.25))
    assert f"{fine}: no usable class names in the model's metadata" in caplog.text
    assert det.names == {} and len(det([np.zeros((64, 64, 3), np.uint8)])[0]) == 1
    raw[4:, 1] = [3.5, -2.0]  # logits, not scores
    odd = _with_metadata(fixed_detector_factory(raw), names=None)
    det = Detector(odd, Postprocess(conf=0.25))
    with pytest.raises(ValueError, match=r"class rows .* hold values from -2 to 3\.5, not scores in \[0, 1\]") as err:
        det.warmup()
    assert str(odd) in str(err.value)


def test_names_written_as_a_list_are_the_class_names(fixed_detector_factory):
    """Findings review, 9: names stored as a list (not ultralytics' dict) were dropped: indices shown, unchecked."""
    path = _with_metadata(fixed_detector_factory(_raw_one_box()), names="['cat', 'dog']")
    assert Detector(path).names == {0: "cat", 1: "dog"}
    with pytest.raises(ValueError, match=r"6 rows, expected 4 \+ 3 classes"):  # and now they check the rows
        Detector(_with_metadata(fixed_detector_factory(_raw_one_box()), names="['cat', 'dog', 'bird']"))


@pytest.mark.parametrize("task", ["segment", "obb", "classify"])
def test_a_model_of_another_task_is_refused_by_its_metadata(fixed_detector_factory, task):
    """Findings review, 7: a segment/obb model was refused as 'N rows, expected 4 + 3 = 7'; its task says why."""
    path = _with_metadata(fixed_detector_factory(_raw_one_box()), names="{0: 'a', 1: 'b'}", task=task)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: task '{task}' \(the model's metadata\)"):
        Detector(path)
    assert Detector(_with_metadata(path, names="{0: 'a', 1: 'b'}", task="detect")).names == {0: "a", 1: "b"}


def test_a_second_required_input_is_refused_naming_the_model(fixed_detector_factory):
    """Findings review, 5: only input 0 was checked; each run then failed with ORT's 'Required inputs
    (['thr']) are missing', which detect reported against the image being run."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = fixed_detector_factory(_raw_one_box())
    model = onnx.load(str(path))
    model.graph.input.append(helper.make_tensor_value_info("thr", TensorProto.FLOAT, [1]))
    model.graph.node.append(helper.make_node("Identity", ["thr"], ["thr_out"]))
    model.graph.output.append(helper.make_tensor_value_info("thr_out", TensorProto.FLOAT, [1]))
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: the model requires 2 inputs \('images' .*'thr'"):
        Detector(path)
    model.graph.initializer.append(numpy_helper.from_array(np.array([0.5], np.float32), "thr"))  # a default
    onnx.save(model, str(path))
    assert len(Detector(path, Postprocess(conf=0.25))([np.zeros((64, 64, 3), np.uint8)])[0]) == 1


def test_the_warm_up_runs_the_whole_path_a_frame_takes(fixed_detector_factory, monkeypatch):
    """Diff review finding 6: the warm-up ran the model alone on zeros, so the first timed image still paid the
    letterbox's one-off cost (OpenCV's lazy import on the first resize) and the first decode + NMS."""
    from edgeproof.runtime import preprocess

    det = Detector(fixed_detector_factory(_raw_one_box()), Postprocess(conf=0.25))
    preprocess._opencv.cache_clear()  # as in a fresh process: OpenCV not yet imported
    resized, decoded = [], []
    real_resize, real_post = preprocess._resize, det.postprocess
    monkeypatch.setattr(preprocess, "_resize", lambda im, w, h: resized.append((w, h)) or real_resize(im, w, h))
    monkeypatch.setattr(det, "postprocess", lambda raw, lbs: decoded.append(len(lbs)) or real_post(raw, lbs))
    det.warmup()
    assert preprocess._opencv.cache_info().currsize == 1  # the lazy import happened in the warm-up
    assert resized == [(64, 64)] and decoded == [1]  # a real letterbox resize, then decode + NMS
