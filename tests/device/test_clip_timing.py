"""End to end over a recorded clip (``e2e_input: clip``): each frame's latency counts its decode, as over image
files, and warm-up frames stay out of the figures (measure12 finding 1: the timer started after a reader thread
had decoded the frame, so a decode 100 ms slower left p95 where it was)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import edgeproof.device.video as video
from edgeproof.device.timing import end_to_end_clip
from edgeproof.runtime.detector import Detector
from tests.device.builders import fixed_raw

DECODE_S = 0.04  # each frame's read + decode in the fake capture


class FakeCapture:
    """A clip of ``frames`` frames whose ``read()`` takes ``delays[k]`` seconds for its k-th frame overall."""

    log: ClassVar[list[str]] = []

    def __init__(self, frames: int, delays: list[float], counter: list[int]) -> None:
        self.left, self.delays, self.counter = frames, delays, counter
        FakeCapture.log.append("open")

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left == 0:
            return False, None
        time.sleep(self.delays[min(self.counter[0], len(self.delays) - 1)])
        self.counter[0] += 1
        self.left -= 1
        return True, np.full((48, 64, 3), 40, np.uint8)

    def release(self) -> None:
        FakeCapture.log.append("release")


@pytest.fixture
def capture(monkeypatch):
    """``capture(frames, delays)`` -> the count of frames read so far (a one-element list)."""
    FakeCapture.log = []

    def install(frames: int, delays: list[float]) -> list[int]:
        counter = [0]
        monkeypatch.setattr(video, "open_capture", lambda _source: FakeCapture(frames, delays, counter))
        return counter

    return install


@pytest.fixture
def detector(fixed_detector_factory) -> Detector:
    return Detector(fixed_detector_factory(fixed_raw(), imgsz=64))


def test_each_clip_frames_latency_counts_its_decode(capture, detector):
    capture(frames=4, delays=[DECODE_S])
    e2e = end_to_end_clip(detector, Path("clip.avi"), warmup=0, n=6)  # 4 frames, looped
    assert (e2e["samples"], e2e["images"], e2e["source"]) == (6, 6, "clip:clip.avi")
    assert e2e["min"] >= DECODE_S * 1000.0  # decode start to boxes: never less than the decode itself
    assert e2e["fps"] <= 1.0 / DECODE_S  # frames per wall second: one decode after another at best
    assert FakeCapture.log == ["open", "release"] * 2  # looped once, every capture released


def test_warm_up_frames_are_outside_the_timed_window_and_the_figures(capture, detector):
    cold = 0.3  # the first frame, as a cold session or decoder takes longer
    read = capture(frames=3, delays=[cold, 0.001])
    at_edges: list[int] = []
    e2e = end_to_end_clip(detector, Path("clip.avi"), warmup=2, n=5, edge=lambda: at_edges.append(read[0]))
    assert at_edges == [2, 7]  # the window opens after the two warm-up frames and closes after the 5 timed ones
    assert e2e["samples"] == 5 and e2e["max"] < cold * 1000.0  # the cold frame is not one of them


def test_a_clip_with_no_frames_is_refused_by_name(capture, detector):
    capture(frames=0, delays=[0.0])
    with pytest.raises(ValueError, match=r"clip\.avi: no frames could be decoded"):
        end_to_end_clip(detector, Path("clip.avi"), warmup=2, n=3)
    assert FakeCapture.log == ["open", "release"]
