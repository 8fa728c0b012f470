"""The overlapped frame pipeline (issue 22): same detections in the same order, bounded, errors surface."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from edgeproof.runtime import timing
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.overlap import detect_overlapped


def _raw() -> np.ndarray:
    raw = np.zeros((6, 3), np.float32)
    raw[:, 0] = [32, 32, 16, 16, 0.9, 0.05]
    raw[:, 1] = [10, 12, 8, 8, 0.0, 0.4]
    return raw


def _files(tmp_path, n=5):
    out = []
    for i in range(n):
        out.append(tmp_path / f"im{i}.png")
        Image.fromarray(np.full((40 + 8 * i, 64, 3), 30 * i, np.uint8)).save(out[-1])
    return out


def test_overlapped_detections_equal_the_serial_ones_in_order(fixed_detector_factory, tmp_path):
    detector = Detector(fixed_detector_factory(_raw()))
    files = _files(tmp_path)
    serial = detector.detect_files(files)
    got = list(detect_overlapped(detector, files, depth=2))
    assert [p for p, _d, _t in got] == files
    for (_p, det, _t), ref in zip(got, serial, strict=True):
        np.testing.assert_array_equal(det.boxes, ref.boxes)
        np.testing.assert_array_equal(det.scores, ref.scores)


def test_the_prefetch_is_bounded_and_stops_with_the_consumer(fixed_detector_factory, tmp_path):
    detector = Detector(fixed_detector_factory(_raw()))
    prepared, original = [], detector.preprocess
    detector.preprocess = lambda images: prepared.append(1) or original(images)
    before = set(threading.enumerate())  # other tests' daemon threads are not this one's
    frames = detect_overlapped(detector, _files(tmp_path, 8) * 3, depth=1)
    for consumed, _ in enumerate(frames, start=1):
        threading.Event().wait(0.02)  # a slow model: the producer must wait for it
        assert len(prepared) <= consumed + 1  # at most one frame decoded ahead of the model
        if consumed == 3:
            break
    frames.close()
    ours = [t for t in threading.enumerate() if t not in before]
    for t in ours:
        t.join(timeout=5)
    assert not [t for t in ours if t.is_alive()]


def test_a_decode_error_reaches_the_caller_naming_the_file(fixed_detector_factory, tmp_path):
    detector = Detector(fixed_detector_factory(_raw()))
    files = [*_files(tmp_path, 2), tmp_path / "missing.png"]
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        list(detect_overlapped(detector, files))


def test_overlapped_timing_reports_throughput_and_per_frame_latency(fixed_detector_factory, tmp_path):
    detector = Detector(fixed_detector_factory(_raw()))
    stats = timing.end_to_end_overlapped(detector, _files(tmp_path, 3), warmup=2, runs=6)
    assert (stats["samples"], stats["images"], stats["distinct_images"], stats["prefetch"]) == (6, 6, 3, 1)
    assert stats["fps"] > 0 and stats["p50"] > 0


def test_frames_in_parallel_cover_every_frame_once_and_run_at_once():
    import time

    seen, lock = [], threading.Lock()
    running, most = [0], [0]

    def worker(k):
        def call(i):
            with lock:
                seen.append((k, i))
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.01)  # releases the GIL, as session.run and the decoders do
            with lock:
                running[0] -= 1

        return call

    latencies, wall = timing.parallel_calls([worker(0), worker(1)], warmup=2, runs=7)
    assert len(seen) == 2 * 2 + 7 and seen[:4] == [(0, 0), (0, 1), (1, 0), (1, 1)]  # each worker warmed up first
    timed = seen[4:]
    assert sorted(i for _, i in timed) == list(range(7))  # every frame once
    assert {i for k, i in timed if k == 0} == {0, 2, 4, 6} and {i for k, i in timed if k == 1} == {1, 3, 5}
    assert len(latencies) == 7 and all(ms >= 9 for ms in latencies)
    assert most[0] == 2 and wall < 7 * 0.01  # two frames at a time: faster than one after another


def test_a_parallel_worker_error_reaches_the_caller():
    def fails(i):
        if i == 3:
            raise ValueError("frame 3: unreadable image")

    with pytest.raises(ValueError, match="frame 3"):
        timing.parallel_calls([fails, fails], warmup=0, runs=6)
    with pytest.raises(ValueError, match="at least one worker"):
        timing.parallel_calls([], warmup=0, runs=1)


def test_parallel_timing_reports_throughput_and_per_frame_latency(fixed_detector_factory, tmp_path):
    detectors = [Detector(fixed_detector_factory(_raw())) for _ in range(2)]
    stats = timing.end_to_end_parallel(detectors, _files(tmp_path, 3), warmup=1, runs=6)
    assert (stats["samples"], stats["images"], stats["distinct_images"], stats["workers"]) == (6, 6, 3, 2)
    assert stats["fps"] > 0 and stats["p50"] > 0


def test_frames_in_parallel_only_on_cpu_and_more_than_one_core(fixed_detector_factory, tmp_path):
    from edgeproof.runtime.postprocess import Postprocess

    model, files, post = fixed_detector_factory(_raw()), _files(tmp_path, 3), Postprocess()
    gpu = timing.frames_in_parallel(model, post, ["CUDAExecutionProvider"], "all", files, 0, 4, cores=2)
    assert gpu["measured"] is False and "share one device" in gpu["reason"]
    assert timing.frames_in_parallel(model, post, ["CPUExecutionProvider"], "all", files, 0, 4, cores=1) == {
        "measured": False,
        "reason": "one core",
    }
    got = timing.frames_in_parallel(model, post, ["CPUExecutionProvider"], "all", files, 1, 4, cores=3)
    assert got["measured"] is True and got["workers"] == 3 and got["images"] == 4


def test_a_failure_in_parallel_names_its_image(tmp_path):
    from edgeproof.runtime.overlap import detect_parallel

    class Failing:
        def __call__(self, images):
            raise ValueError("output shape (1, 2) is not a detector's")

    files = _files(tmp_path, 3)
    with pytest.raises(ValueError, match=r"im0\.png: output shape"):
        list(detect_parallel(Failing(), files, workers=2))


def test_frames_in_parallel_records_a_failure_instead_of_raising(fixed_detector_factory, tmp_path):
    from edgeproof.runtime.postprocess import Postprocess

    model = fixed_detector_factory(_raw())
    gone = [tmp_path / "gone.png"]
    got = timing.frames_in_parallel(model, Postprocess(), ["CPUExecutionProvider"], "all", gone, 0, 2, cores=2)
    assert got["measured"] is False and "gone.png" in got["reason"] and got["reason"].startswith("failed: ")
