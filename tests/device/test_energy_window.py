"""Energy and memory per frame, the findings of the issue 20 review: the energy window is the FPS
window, gaps in the power readings are never filled in, and a measurement that disagrees with itself
is refused."""

from __future__ import annotations

import json
import os

import pytest

from tests.device.test_energy import FAKE_TEGRASTATS


def _measure_with_fake_tegrastats(bundle, tmp_path, monkeypatch) -> dict:
    import edgeproof.device.gated as gated
    from edgeproof.device.measure import run_measure

    fake = tmp_path / "bin" / "tegrastats"
    fake.parent.mkdir()
    fake.write_text(FAKE_TEGRASTATS)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(gated, "IDLE_S", 0.4)
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    return json.loads((out / "bench.json").read_text())


def test_mj_per_frame_is_taken_over_the_frames_fps_is_timed_over(bundle, tmp_path, monkeypatch):
    """At a constant 6 W, mJ/frame must be 6 W / FPS: the energy window is the timed frames only. Before,
    it also held the 2 untimed warm-up frames and was divided by the timed ones (2.1x on 4 frames)."""
    bench = _measure_with_fake_tegrastats(bundle, tmp_path, monkeypatch)
    frames, fps = bench["e2e"]["images"], bench["fps_e2e"]
    assert bench["energy_mj_per_frame"] == pytest.approx(6.0 * 1000.0 / fps, rel=0.03)
    assert bench["energy"]["window_s"] == pytest.approx(frames / fps, rel=0.03)
    assert bench["energy"]["frames"] == frames and bench["e2e"]["warmup"] == 2  # the warm-up is recorded
