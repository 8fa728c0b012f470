"""`edgeproof detect` behaves like `yolo predict` (issue 21.5): the released model by default,
annotated images and one summary line per image, JSON Lines, folders and globs, options after the
subcommand, and an output that cannot be written is an error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeproof.cli import main
from edgeproof.detect import annotate, summary
from edgeproof.detect_inputs import expand_sources
from edgeproof.io import sha256_file
from edgeproof.runtime.postprocess import Detections


def _raw(boxes: int = 2) -> np.ndarray:
    """``boxes`` well separated detections of class 1 ("dog"), at model input 64 px."""
    raw = np.zeros((6, 4), np.float32)
    for i in range(boxes):
        raw[:, i] = [12 + 26 * i, 20, 10, 10, 0.0, 0.9]
    return raw


@pytest.fixture
def project(tmp_path, monkeypatch, fixed_detector_factory):
    """A project folder (the working directory) with a released model and three images."""
    model = fixed_detector_factory(_raw(), imgsz=64, names={0: "cat", 1: "dog"})
    (tmp_path / "models").mkdir()
    model.rename(tmp_path / "models" / "int8.onnx")
    (tmp_path / "reports").mkdir()
    released = {"path": "models/int8.onnx", "variant": "int8", "sha256": sha256_file(tmp_path / "models" / "int8.onnx")}
    release = {"build_profile": "cpu-ci", "profiles": {"cpu-ci": released}}
    (tmp_path / "reports" / "release.json").write_text(json.dumps(release))
    (tmp_path / "imgs").mkdir()
    for name in ("a.jpg", "b.png"):
        Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(tmp_path / "imgs" / name)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_model_is_the_released_one_and_images_are_saved_with_one_line_each(project, capsys):
    assert main(["detect", "imgs/a.jpg", "imgs/b.png"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("image 1/2 imgs/a.jpg: 2 dogs, ") and lines[0].endswith(" ms")
    assert lines[1].startswith("image 2/2 imgs/b.png: 2 dogs, ")
    assert lines[2] == "Results saved to runs/detect/predict"
    assert sorted(p.name for p in (project / "runs/detect/predict").iterdir()) == ["a.jpg", "b.jpg"]
    assert main(["detect", "imgs/a.jpg"]) == 0  # a second run gets its own folder, like yolo's predict2
    assert (project / "runs/detect/predict2/a.jpg").is_file()


def test_no_save_writes_nothing(project):
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 0
    assert not (project / "runs").exists()


def test_json_is_json_lines_one_object_per_image(project, capsys):
    assert main(["detect", "imgs", "--json", "--no-save"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["image"] for r in records] == ["imgs/a.jpg", "imgs/b.png"]
    assert [d["name"] for d in records[0]["detections"]] == ["dog", "dog"]
    assert "2 dogs" in captured.err  # the human lines go to stderr, stdout stays machine-readable


def test_folders_and_globs_expand_to_their_images(project):
    assert expand_sources(["imgs"]) == [Path("imgs/a.jpg"), Path("imgs/b.png")]
    assert expand_sources(["imgs/*.png"]) == [Path("imgs/b.png")]
    assert expand_sources(["**/*.jpg"]) == [Path("imgs/a.jpg")]
    with pytest.raises(FileNotFoundError, match=r"imgs/\*\.gif: no images"):
        expand_sources(["imgs/*.gif"])
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg: no such file"):
        expand_sources(["missing.jpg"])


def test_a_folder_gives_every_image_format_ultralytics_reads(project, capsys):
    """contact11 finding 4: .avif and .jp2 (Pillow decodes both, `yolo predict` reads both) were skipped in a
    folder, and the ``image i/N`` count did not show it; the suffixes are the data stage's, one list."""
    (project / "mixed").mkdir()
    for name, fmt in (("c.avif", "AVIF"), ("d.jp2", "JPEG2000"), ("e.JPG", "JPEG")):
        Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(project / "mixed" / name, fmt)
    assert expand_sources(["mixed"]) == [Path("mixed/c.avif"), Path("mixed/d.jp2"), Path("mixed/e.JPG")]
    assert main(["detect", "mixed", "--no-save"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == [
        "image 1/3 mixed/c.avif",
        "image 2/3 mixed/d.jp2",
        "image 3/3 mixed/e.JPG",
    ]


def test_a_listed_image_that_is_a_broken_symlink_is_an_error_naming_it_and_its_target(project, caplog):
    """A link in a folder whose target is gone was skipped without a word (``image 1/2`` counted past it),
    while an image that cannot be decoded stops the run: a broken link is an unreadable image too, in a
    folder, a glob or named itself."""
    gone = project / "elsewhere" / "c.jpg"
    (project / "imgs" / "c.jpg").symlink_to(gone)
    (project / "imgs" / "readme.txt").symlink_to(project / "elsewhere" / "readme.txt")  # not an image: not listed
    message = rf"^imgs/c\.jpg: unreadable image \(a symlink to {gone}, which does not exist\)$"
    for source in ("imgs", "imgs/*.jpg", "**/*.jpg"):
        with pytest.raises(FileNotFoundError, match=message):
            expand_sources([source])
    with pytest.raises(FileNotFoundError, match=rf"^imgs/c\.jpg: no such file or folder \(a symlink to {gone}, "):
        expand_sources(["imgs/c.jpg"])
    assert main(["detect", "imgs"]) == 2
    assert f"imgs/c.jpg: unreadable image (a symlink to {gone}, which does not exist)" in caplog.text
    assert not (project / "runs").exists()
    (project / "imgs" / "c.jpg").unlink()
    (project / "imgs" / "c.jpg").symlink_to(project / "imgs" / "a.jpg")  # a link that leads to an image is one
    assert expand_sources(["imgs"]) == [Path("imgs/a.jpg"), Path("imgs/b.png"), Path("imgs/c.jpg")]


def test_a_video_or_a_folder_of_folders_says_how_to_run_it(project, caplog):
    """`yolo predict` takes a video as a source and these inputs look alike: the errors say what to write."""
    (project / "clip.MP4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(ValueError, match=r"^clip\.MP4: a video, not an image; run it with --video clip\.MP4$"):
        expand_sources(["clip.MP4"])
    assert main(["detect", "clip.MP4", "--no-save"]) == 2 and "--video clip.MP4" in caplog.text
    (project / "shots" / "day 1").mkdir(parents=True)
    (project / "imgs" / "a.jpg").rename(project / "shots" / "day 1" / "a.jpg")
    hint = r"directly in it; it has 1 subfolder\(s\), not searched: quote a glob like 'shots/\*\*/\*\.jpg'$"
    with pytest.raises(FileNotFoundError, match=r"^shots: no images \(.*\) " + hint):
        expand_sources(["shots"])
    assert expand_sources(["shots/**/*.jpg"]) == [Path("shots/day 1/a.jpg")]  # what the hint says works
    with pytest.raises(FileNotFoundError, match=r"^shots/day 1/\*\.png: no images \([^)]*\)$"):
        expand_sources(["shots/day 1/*.png"])  # a glob, not a folder: no folder hint


def test_params_is_accepted_after_the_subcommand(project, capsys):
    # a deploy threshold above every score: the file given after `detect` is the one read
    (project / "strict.yaml").write_text("deploy:\n  conf: 0.95\n")
    assert main(["detect", "--params", "strict.yaml", "imgs/a.jpg", "--no-save"]) == 0
    assert "no detections" in capsys.readouterr().out


def test_a_named_params_file_must_exist_only_the_implicit_default_may_be_absent(project, caplog):
    assert main(["detect", "--params", "nothere.yaml", "imgs/a.jpg", "--no-save"]) == 2
    assert "nothere.yaml: file not found" in caplog.text
    assert main(["--params", "nothere.yaml", "detect", "imgs/a.jpg", "--no-save"]) == 2
    # named explicitly, even the default's name must exist
    Path("params.yaml").unlink(missing_ok=True)
    assert main(["detect", "--params", "params.yaml", "imgs/a.jpg", "--no-save"]) == 2
    assert "params.yaml: file not found" in caplog.text
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 0  # the implicit default: deploy defaults


def test_a_named_model_wins_and_a_missing_release_is_a_clear_error(project, caplog):
    (project / "reports" / "release.json").unlink()
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 2
    assert "reports/release.json: not found" in caplog.text
    assert main(["detect", "models/int8.onnx", "imgs/a.jpg", "--no-save"]) == 0


def test_a_released_model_whose_file_changed_is_refused_naming_both_sha256(project, fixed_detector_factory, caplog):
    """records11 finding 7: another file copied over release.json's path (a re-export, another commit's
    ``dvc checkout``) ran as "the released model"; the gate refuses it, and so does detect now. A model
    named explicitly is run as it is."""
    released = sha256_file(project / "models" / "int8.onnx")
    fixed_detector_factory(_raw(1), imgsz=64, names={0: "cat", 1: "dog"}).replace(project / "models" / "int8.onnx")
    swapped = sha256_file(project / "models" / "int8.onnx")
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 2
    error = next(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "\n" not in error
    assert f"int8.onnx: sha256 {swapped} is not {released} recorded in reports/release.json for cpu-ci" in error
    assert "rerun `dvc repro`" in error and "--model" in error
    assert main(["detect", "--model", "models/int8.onnx", "imgs/a.jpg", "--no-save"]) == 0
    assert main(["detect", "models/int8.onnx", "imgs/a.jpg", "--no-save"]) == 0


def test_a_released_model_that_is_gone_or_has_no_sha256_is_a_clear_error(project, caplog):
    (project / "models" / "int8.onnx").unlink()
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 2
    assert "models/int8.onnx: not found, the model reports/release.json releases for cpu-ci; rerun" in caplog.text
    release = json.loads((project / "reports" / "release.json").read_text())
    del release["profiles"]["cpu-ci"]["sha256"]
    (project / "reports" / "release.json").write_text(json.dumps(release))
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 2
    assert "no released model (path and sha256) for profile 'cpu-ci'" in caplog.text


def test_a_model_named_in_upper_case_is_the_model(project, fixed_detector_factory, capsys):
    """Findings review, 8: ``detect MODEL.ONNX img`` took the model for an image and ran the released one."""
    fixed_detector_factory(_raw(), imgsz=64, names={0: "cat", 1: "bird"}).rename(project / "MODEL.ONNX")
    assert main(["detect", "MODEL.ONNX", "imgs/a.jpg", "--no-save"]) == 0
    assert capsys.readouterr().out.startswith("image 1/1 imgs/a.jpg: 2 birds, ")


@pytest.fixture
def video(project):
    cv2 = pytest.importorskip("cv2")
    path = project / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64))
    for _ in range(3):
        writer.write(np.full((64, 64, 3), 100, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("out", ["x.gif", "missing/x.mp4"])
def test_a_video_output_that_cannot_be_written_is_an_error(video, out, capsys, caplog):
    assert main(["detect", "--video", str(video), "--out", out]) == 2
    assert capsys.readouterr().out == ""  # no summary naming a file nobody wrote
    assert f"--out {out}" in caplog.text
    assert not Path(out).exists()


def test_a_video_output_is_written(video, capsys):
    assert main(["detect", "--video", str(video), "--out", "annotated.avi"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 3
    assert Path("annotated.avi").stat().st_size > 0


def test_summary_counts_classes_most_frequent_first():
    det = Detections(np.zeros((4, 4), np.float32), np.ones(4, np.float32), np.array([0, 0, 0, 1]))
    assert summary(det, {0: "circle", 1: "square"}, 4.06) == "3 circles, 1 square, 4.1 ms"
    assert summary(Detections.empty(), {}, 1.0) == "no detections, 1.0 ms"


def test_labels_stay_inside_the_image_and_boxes_are_outlined():
    det = Detections(np.array([[10, 0, 50, 40]], np.float32), np.array([0.9], np.float32), np.array([0]))
    image = np.asarray(annotate(np.full((64, 64, 3), (72, 249, 10), np.uint8), det, {0: "a"}))
    assert image.shape == (64, 64, 3)
    # a box at the top edge: its label is drawn inside the box (class 0 colour), not clipped above it
    assert tuple(image[3, 14]) == (255, 56, 56)
    # the black outline makes the box visible even where the class colour matches the background
    assert tuple(image[20, 10]) == (0, 0, 0) and tuple(image[20, 11]) == (255, 56, 56)


def test_workers_run_images_in_parallel_and_report_them_in_input_order(project, capsys):
    for i in range(9):  # different sizes, so a wrong order would show in the recorded shapes
        Image.fromarray(np.full((40 + 4 * i, 64, 3), 100, np.uint8)).save(project / "imgs" / f"c{i}.png")
    assert main(["detect", "imgs", "--json", "--no-save"]) == 0
    serial = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["detect", "imgs", "--json", "--no-save", "--workers", "3"]) == 0
    parallel = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(parallel) == 11
    drop = ("ms", "speed_ms")
    assert [{k: v for k, v in r.items() if k not in drop} for r in parallel] == [
        {k: v for k, v in r.items() if k not in drop} for r in serial
    ]


def test_workers_must_be_positive_and_a_bad_image_names_its_file(project, caplog):
    assert main(["detect", "imgs", "--workers", "0", "--no-save"]) == 2
    assert "--workers must be at least 1" in caplog.text
    assert main(["detect", "--video", "clip.mp4", "--workers", "2"]) == 2
    assert "a --video runs frame after frame" in caplog.text
    (project / "imgs" / "broken.jpg").write_bytes(b"not a jpeg")
    assert main(["detect", "imgs", "--workers", "2", "--no-save"]) == 2
    assert "broken.jpg: unreadable image" in caplog.text


@pytest.mark.parametrize("save_dir", ["afile/x", "afile", "/sys/edgeproof-x"])
def test_a_save_dir_that_cannot_be_written_is_an_error_naming_it(project, save_dir, caplog):
    """Below a file, a file itself (``/dev/null`` took ``/dev/null2``) or where no folder can be made:
    exit 2 and an error naming --save-dir (was a traceback and exit 1, or a silent ``afile2``)."""
    if save_dir.startswith("/sys") and not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    (project / "afile").write_text("x")
    assert main(["detect", "imgs/a.jpg", "--save-dir", save_dir]) == 2
    assert f"--save-dir {save_dir}: " in caplog.text
    assert not (project / "afile2").exists() and not Path(save_dir).is_dir()


def test_an_image_that_fails_leaves_no_empty_results_folder(project, caplog):
    (project / "bad").mkdir()
    (project / "bad" / "broken.jpg").write_bytes(b"not a jpeg")
    assert main(["detect", "bad"]) == 2
    assert "broken.jpg: unreadable image" in caplog.text
    assert not (project / "runs").exists()  # nor the parents it created for predict


def test_a_failed_first_image_leaves_no_parent_folder_it_created(project, caplog):
    """Diff review finding 8: ``--save-dir out2/deep/pred`` left ``out2/deep`` behind after the first image failed;
    a parent that existed before stays."""
    (project / "bad").mkdir()
    (project / "bad" / "broken.jpg").write_bytes(b"not a jpeg")
    (project / "kept").mkdir()
    assert main(["detect", "bad", "--save-dir", "out2/deep/pred"]) == 2
    assert main(["detect", "bad", "--save-dir", "kept/new/pred"]) == 2
    assert not (project / "out2").exists() and not (project / "kept" / "new").exists()
    assert (project / "kept").is_dir()


def test_images_or_json_with_a_video_are_refused_not_ignored(video, capsys, caplog):
    assert main(["detect", "--video", str(video), "--json", "imgs/a.jpg"]) == 2
    assert "--video runs on the video only" in caplog.text and "also given: imgs/a.jpg --json" in caplog.text
    assert capsys.readouterr().out == ""


def test_the_first_images_time_excludes_the_warm_up(project, monkeypatch, capsys):
    """The detector runs once untimed before the first image (its time was ONNX Runtime's set-up)."""
    from edgeproof.runtime.detector import Detector

    calls = []
    monkeypatch.setattr(Detector, "warmup", lambda self, batch=1: calls.append(batch))
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 0
    assert calls == [1]


def test_the_first_video_frames_latency_excludes_the_warm_up(video, monkeypatch, capsys):
    """Findings review, 6: the images had a warm-up run, a video's first frame still timed ORT's set-up."""
    from edgeproof.runtime.detector import Detector

    calls = []
    monkeypatch.setattr(Detector, "warmup", lambda self, batch=1: calls.append(batch))
    assert main(["detect", "--video", str(video)]) == 0
    assert calls == [1] and json.loads(capsys.readouterr().out)["frames"] == 3


def test_without_params_yaml_here_the_built_in_settings_are_named(project, caplog):
    """Run from a folder without params.yaml (a subfolder), detect said nothing about its settings."""
    assert main(["detect", "imgs/a.jpg", "--no-save"]) == 0
    assert "no params.yaml in " in caplog.text and "built-in deploy settings {'conf': " in caplog.text
