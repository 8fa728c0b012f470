"""Issue 12 defect 5: optimize checks its output before publishing it (an interrupt leaves nothing).

Before the fix the FP32 file was moved into place and parity-checked afterwards, so an interrupt
in between left an unchecked release candidate (this test failed on that code).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.runtime.deploy import DeploySettings
from edgeproof.training import optimize
from edgeproof.training.params import OptimizeParams
from edgeproof.training.parity import ParityError

RAW = np.zeros((5, 8), np.float32)
RAW[:4, 0] = [20, 20, 10, 10]
RAW[4, 0] = 0.9


def _params(**extra):
    return OptimizeParams.model_validate({"simplify": False, "variants": ["fp32", "fp16"], **extra})


def _inputs(exported, reference_raw, images):
    def reference(batch):
        return np.repeat(reference_raw[None], len(batch), axis=0)

    return optimize.Inputs(exported=exported, reference=reference, train_images=images, val_images=images)


@pytest.fixture
def images(tmp_path):
    from PIL import Image

    paths = []
    for i in range(2):
        path = tmp_path / f"im{i}.jpg"
        Image.fromarray(np.full((48, 64, 3), 100 + i, np.uint8)).save(path)
        paths.append(path)
    return paths


def test_checked_variants_are_published_with_their_parity(fixed_detector_factory, images, tmp_path):
    out = tmp_path / "optimized"
    facts, parity = optimize.build_variants(
        _inputs(fixed_detector_factory(RAW), RAW, images), out, _params(), DeploySettings()
    )
    assert sorted(p.name for p in out.iterdir()) == ["fp16.onnx", "fp32.onnx"]
    assert facts["fp32"]["checker"] == "passed" and len(facts["fp16"]["sha256"]) == 64
    assert parity["raw_outputs"]["max_abs_diff"] == 0.0
    assert parity["detections"]["variants"]["fp32"]["matched"] == len(images)
    import onnx

    for name in ("fp32", "fp16"):
        props = {p.key: p.value for p in onnx.load(str(out / f"{name}.onnx")).metadata_props}
        assert props["edgeproof_variant"] == name and props["names"]  # runtime metadata carried over


def test_an_interrupted_check_publishes_nothing(fixed_detector_factory, images, tmp_path, monkeypatch):
    out = tmp_path / "optimized"

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(optimize, "check_parity", interrupted)
    with pytest.raises(KeyboardInterrupt):
        optimize.build_variants(_inputs(fixed_detector_factory(RAW), RAW, images), out, _params(), DeploySettings())
    assert not out.exists()
    assert not list(tmp_path.glob(".optimized*"))  # no half-built folder left behind either


def test_a_raw_parity_failure_keeps_the_previous_release_candidates(fixed_detector_factory, images, tmp_path):
    out = tmp_path / "optimized"
    out.mkdir()
    (out / "fp32.onnx").write_bytes(b"previous")
    drifted = RAW.copy()
    drifted[0, 0] += 0.5  # half a pixel: far beyond reordering noise
    with pytest.raises(ParityError, match="max_abs_diff"):
        optimize.build_variants(_inputs(fixed_detector_factory(RAW), drifted, images), out, _params(), DeploySettings())
    assert [p.name for p in out.iterdir()] == ["fp32.onnx"]
    assert (out / "fp32.onnx").read_bytes() == b"previous"


def test_variants_must_include_the_fp32_reference():
    with pytest.raises(ValueError, match="fp32"):
        OptimizeParams.model_validate({"variants": ["int8"]})
