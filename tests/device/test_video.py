"""`edgeproof detect --video`: a recorded clip through the release model, headless, annotated output."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edgeproof.device.video import FrameReader, is_live, open_capture  # noqa: E402
from tests.device.builders import fixed_raw  # noqa: E402


def _clip(path, frames=12, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 255, np.uint8))
    writer.release()
    return path


def test_detect_on_a_video_file_writes_annotated_video(tmp_path, fixed_detector_factory):
    model = fixed_detector_factory(fixed_raw(), imgsz=64, names={0: "thing"})
    clip, out = _clip(tmp_path / "clip.avi"), tmp_path / "annotated.avi"
    cmd = [sys.executable, "-m", "edgeproof.cli", "detect", str(model), "--video", str(clip), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 12 and summary["dropped_frames"] == 0 and summary["fps"] > 0
    assert summary["detections"] == 12  # one box per frame from the fixed model
    cap = cv2.VideoCapture(str(out))
    n, first = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        first = frame if first is None else first
        n += 1
    assert n == 12 and first.shape == (64, 96, 3)
    # frame 0 is black; the box (input 24..40 in a 64 px letterbox of the 96 x 64 frame: 64 x 43 at
    # pad_y 10, i.e. x 36..60, y 20.8..44.6 in the frame) is drawn, nothing else is
    assert first[19:24, 36:60].max() > 50 and first[:8, :8].max() < 30 and first[50:, 70:].max() < 30


class _ScriptedCapture:
    """A capture of ``n`` numbered frames, in step with its consumer (no clock involved): frame 1 is read
    only once the consumer holds frame 0, and ``exhausted`` says when the source has been read to the end."""

    def __init__(self, n: int) -> None:
        self.n, self.read_count = n, 0
        self.consumer_has_first = threading.Event()
        self.exhausted = threading.Event()

    def read(self):
        if self.read_count == 1:
            assert self.consumer_has_first.wait(timeout=30), "the consumer never took frame 0"
        if self.read_count == self.n:
            self.exhausted.set()
            return False, None
        self.read_count += 1
        return True, np.full((2, 2, 3), self.read_count - 1, np.uint8)

    def release(self) -> None:
        pass


def test_reader_overlaps_a_file_without_dropping(tmp_path):
    clip = _clip(tmp_path / "clip.avi", frames=20)
    assert not is_live(str(clip)) and is_live("0") and is_live("rtsp://cam/stream")
    reader = FrameReader(open_capture(str(clip)), live=False, depth=2)
    assert sum(1 for _ in reader) == 20 and reader.dropped == 0
    reader.close()


def test_a_live_source_drops_the_oldest_frames_behind_a_slow_model():
    # The consumer (a slow model) holds its first frame until the reader has read every frame: the
    # window in which a live source must drop is open for certain, not by a sleep that load can close.
    cap = _ScriptedCapture(20)
    live = FrameReader(cap, live=True, depth=1)
    got = []
    for frame in live:
        if not got:
            cap.consumer_has_first.set()
            assert cap.exhausted.wait(timeout=30), "the reader never finished the source"
        got.append(int(frame[0, 0, 0]))
    live.close()
    assert cap.read_count == 20
    # the first frame, then only the newest: the 18 read while the model was busy were dropped
    assert got == [0, 19] and live.dropped == 18


def test_unopenable_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot open the video source"):
        open_capture(str(tmp_path / "missing.mp4"))


class _Boxes:
    """Detections of nothing: run_video counts them and draws none."""

    boxes = np.zeros((0, 4), np.float32)
    scores = np.zeros(0, np.float32)
    classes = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return 0


def _frames_in(path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.parametrize("stop", ["crash", "ctrl-c"])
def test_an_output_video_is_replaced_only_by_a_finished_one(tmp_path, stop):
    """interrupt12 review: `detect --video --out FILE` wrote straight over the user's file, so a kill left an
    unreadable video where a good one was, and Ctrl-C a traceback instead of the summary."""
    from edgeproof.device.video import run_video

    clip, out = _clip(tmp_path / "clip.avi"), _clip(tmp_path / "kept.avi", frames=40)
    calls = []

    def detect(rgb):
        calls.append(rgb.shape)
        if len(calls) == 5:
            raise RuntimeError("model crashed") if stop == "crash" else KeyboardInterrupt
        return _Boxes()

    if stop == "crash":
        with pytest.raises(RuntimeError, match="model crashed"):
            run_video(detect, str(clip), {}, out)
        assert _frames_in(out) == 40  # the user's video, as it was
    else:
        summary = run_video(detect, str(clip), {}, out)  # Ctrl-C stops a run there, as it stops a stream
        assert summary["frames"] == 4 and _frames_in(out) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "kept.avi"]  # no partial file left
    assert run_video(lambda rgb: _Boxes(), str(clip), {}, out)["frames"] == 12 and _frames_in(out) == 12
