"""`edgeproof perf`'s ultralytics entries, timed with a stand-in for ``YOLO`` (no ultralytics needed)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

from edgeproof.perf import ultra


class FakeYolo:
    """A ``YOLO`` stand-in: ``predict(<.txt>, stream=True)`` sorts the manifest's lines as ultralytics does and
    reads each file between two yields; the first frame pays a setup cost, as a cold model does."""

    made: ClassVar[list[FakeYolo]] = []  # every instance, as ``type(model)(path, task=...)`` builds them

    def __init__(self, path: str = "best.onnx", task: str = "detect") -> None:
        self.ckpt_path, self.task, self.calls, self.read = path, task, [], []
        self.made.append(self)

    def predict(self, source, stream=False, **kwargs):
        self.calls.append((source, stream, kwargs))
        assert stream and str(source).endswith(".txt"), "one stream over a manifest, not a call per frame"
        lines = sorted(Path(source).read_text().splitlines())

        def frames():
            for k, line in enumerate(lines):
                self.read.append(Path(line).read_bytes())  # the decode: inside the span between two yields
                time.sleep(0.05 if k == 0 else 0.004)
                yield SimpleNamespace(speed={"inference": 1.0})

        return frames()


def _images(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for k in range(n):
        paths.append(tmp_path / f"img_{k}.jpg")
        paths[-1].write_bytes(f"image {k}".encode())
    return paths


def test_ultralytics_is_timed_as_one_stream_over_the_same_frames_as_edgeproof(tmp_path):
    """Finding 2: ``predict(path)`` per frame rebuilt ultralytics' config and source loader every frame (about
    0.15 ms of Python per frame, flattering edgeproof by some 1.5 %). One stream at batch 1 pays it once; the
    frames are edgeproof's (warm-up 0..warmup-1, then 0..runs-1, cycled) in that order although ultralytics
    sorts a manifest, and the cold first frame is a warm-up frame, never timed."""
    images = _images(tmp_path, 3)
    model = FakeYolo()
    timing = ultra.Timing(warmup=2, runs=5, conf=0.25, iou=0.7, max_det=300, agnostic=False)
    out = ultra.time_predict(model, images, 64, timing)
    assert len(model.calls) == 1
    assert model.calls[0][2]["imgsz"] == 64 and model.calls[0][2]["conf"] == 0.25
    expected = [images[i % 3].read_bytes() for i in (0, 1, 0, 1, 2, 0, 1)]
    assert model.read == expected
    assert 4.0 <= out["latency_ms_p50"] < 50.0 and out["latency_ms_p95"] < 50.0  # the cold frame is not timed
    assert out["latency_model_ms_p50"] == 1.0 and 0 < out["fps_e2e"] <= 1000 / 4.0


def test_ultralytics_in_parallel_streams_each_worker_its_own_frames(tmp_path):
    """One YOLO per worker, each with one stream over the frames ``parallel_calls`` hands that worker."""

    class Yolo(FakeYolo):
        made: ClassVar[list[FakeYolo]] = []

    images = _images(tmp_path, 4)
    timing = ultra.Timing(warmup=1, runs=5, conf=0.25, iou=0.7, max_det=300, agnostic=True)
    out = ultra.time_predict_parallel(Yolo(), images, 64, timing, workers=2)
    workers = Yolo.made[1:]
    assert [len(m.calls) for m in workers] == [1, 1]
    assert all(m.calls[0][2]["agnostic_nms"] is True for m in workers)
    by_worker = [[images[i % 4].read_bytes() for i in order] for order in ([0, 0, 2, 4], [0, 1, 3])]
    assert [m.read for m in workers] == by_worker
    assert out["latency_ms_p50"] >= 4.0 and out["fps_e2e"] > 0


def test_ultralytics_runs_nms_as_the_deployed_detector_does(tmp_path):
    """Finding 6: deploy.agnostic never reached ultralytics (conf, iou and max_det only), so with ``agnostic: true``
    edgeproof ran class-agnostic NMS and ultralytics per-class NMS."""
    for agnostic in (True, False):
        model = FakeYolo()
        timing = ultra.Timing(warmup=0, runs=1, conf=0.25, iou=0.7, max_det=300, agnostic=agnostic)
        ultra.time_predict(model, _images(tmp_path, 1), 64, timing)
        assert model.calls[0][2]["agnostic_nms"] is agnostic
