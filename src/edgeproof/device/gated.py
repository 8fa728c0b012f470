"""The gated figures, measured first on the engine that ships: model-only latency, end to end with
its energy and memory, and the on-device detections for mAP.

Order: the idle draw (``energy.IDLE_S`` seconds, only where power can be read), then model-only at
the profile's batch, then end to end (its timed frames, warm-up excluded, are the energy window; the
memory loop), then the detections. A sampler records temperatures, clocks and tegrastats throughout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from edgeproof.device.conditions import Sampler
from edgeproof.device.energy import IDLE_S, PowerMeter
from edgeproof.device.energy_record import energy_fields
from edgeproof.device.manifest import read_json_file
from edgeproof.device.memory import MemoryMonitor
from edgeproof.device.sysinfo import SysRoot
from edgeproof.device.timing import coco_detections, end_to_end_clip
from edgeproof.io import write_json
from edgeproof.profiles import Profile
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.scoring import ScoringSettings
from edgeproof.runtime.timing import end_to_end, end_to_end_overlapped, frames_in_parallel, model_only
from edgeproof.settings import as_dict

EXIT_OK, EXIT_BAD_INPUT, EXIT_MACHINE, EXIT_PROVIDERS, EXIT_CRASHED = 0, 2, 4, 5, 6
E2E_WARMUP = 2  # untimed end-to-end frames (image files or the clip's), outside the FPS figure and the energy window


class Refused(RuntimeError):
    """The device side will not measure: ``rule`` names the check, ``code`` is the exit status."""

    def __init__(self, rule: str, reason: str, code: int) -> None:
        super().__init__(reason)
        self.rule, self.code = rule, code


def image_path(profile: Profile) -> Dict[str, str]:
    """Which image path ran (the letterbox cost differs ~20x): OpenCV's resize, or Pillow + numpy."""
    from edgeproof.runtime.preprocess import _opencv

    resize = "opencv" if _opencv() is not None else "numpy"
    decode = "opencv" if profile.e2e_input == "clip" else "pillow"
    return {"image_backend": "opencv" if resize == "opencv" else "pillow", "decode": decode, "resize": resize}


def bundle_clip(bundle: Path) -> Path:
    """The bundle's recorded clip, and OpenCV to read it; a refusal naming what is missing."""
    rel = read_json_file(bundle / "deploy.json").get("clip")
    if not rel:
        raise Refused("e2e_input", f"{bundle}: the profile measures a clip but the bundle has none (bundle.clip)", 2)
    try:
        from edgeproof.device.video import import_cv2

        import_cv2()
    except ImportError as exc:  # the board's software, not the bundle: the same exit as missing providers
        raise Refused("board_packages", str(exc), EXIT_PROVIDERS) from None
    return bundle / rel


def e2e_run(
    model: Detector,
    profile: Profile,
    bundle: Path,
    deploy: DeploySettings,
    images: Any,
    edge: Optional[Callable[[], Any]] = None,
) -> Dict[str, Any]:
    """End to end as the profile measures it: image files, or the frames of the bundle's clip.
    ``edge`` is called at the two edges of the window the FPS figure is timed over (warm-up excluded)."""
    if profile.e2e_input == "clip":
        e2e = end_to_end_clip(model, bundle_clip(bundle), E2E_WARMUP, profile.e2e_images, edge)
    else:
        e2e = end_to_end(model, images, E2E_WARMUP, profile.e2e_images, edge)
        e2e["source"] = "images"
    e2e["warmup"] = E2E_WARMUP
    return e2e


def evaluate(model: Detector, bundle: Path, setup: Dict[str, Any], out: Path) -> Dict[str, Any]:
    """On-device detections of the bundle's val images, written to ``out/detections.json``."""
    gt = read_json_file(bundle / "val" / "annotations.json")
    scoring = ScoringSettings.parse(setup["map"], where=f"{bundle / 'deploy.json'}: map")
    scorer = Detector(model.model_path, Postprocess.scoring(scoring), ort_session=model.session)
    results, ips = coco_detections(scorer, gt, bundle / "val" / "images", setup["category_ids"])
    write_json(out / "detections.json", results)
    # scoring (pycocotools, edgeproof.evaluation) is the CI side's: the runner imports none of it, and
    # the device gate scores the detections itself against the verified ground truth
    return {
        "n_images": len(gt["images"]),
        "n_detections": len(results),
        "detections_file": "detections.json",
        "images_per_s": ips,
        "settings": as_dict(scoring),
        "scored": False,
        "scored_by": "device gate (pycocotools, against the bundle's ground truth)",
    }


def _idle(meter: PowerMeter) -> Optional[Tuple[float, float]]:
    """The idle window just before the run (only where a power source exists: no needless wait)."""
    if meter.source is None and meter.reason is not None:
        return None
    t0 = meter.mark()
    time.sleep(IDLE_S)
    return t0, meter.mark()


def _ram_delta(meter: PowerMeter, idle: Optional[Tuple[float, float]], run: Tuple[float, float]) -> Optional[float]:
    """System RAM in use during the run minus idle (tegrastats; unified memory, GPU included). The session
    is built before the idle window, so the model (weights, engine, CUDA context) is in both: this is what
    the run adds on top of the loaded model, not the model's footprint."""
    if idle is None:
        return None
    during, before = meter.ram_in_use_mb(*run), meter.ram_in_use_mb(*idle)
    return round(during - before, 1) if during is not None and before is not None else None


def _timed_e2e(
    model: Detector,
    profile: Profile,
    bundle: Path,
    deploy: DeploySettings,
    images: Any,
    meter: PowerMeter,
    peak: Optional[Dict[str, Any]],
) -> Tuple[Dict[str, Any], Tuple[float, float], Dict[str, Any]]:
    """End to end, with the energy window's edges and the memory loop on exactly the frames FPS is timed
    over (the warm-up, where one-off allocations happen, outside both); ``peak``: where the peak was reset
    (:func:`~edgeproof.device.memory.reset_peak`), read at the last frame."""
    memory = MemoryMonitor(peak=peak)
    edges: List[float] = []

    def edge() -> None:
        if not edges:
            memory.start()
        edges.append(meter.mark())

    e2e = e2e_run(model, profile, bundle, deploy, images, edge)
    return e2e, (edges[0], edges[1]), memory.stop(int(e2e["images"]))


def _parallel(model: Detector, profile: Profile, images: List[Path]) -> Dict[str, Any]:
    """Throughput with a frame per core in parallel (CPU providers only; a GPU would queue them). Informational
    and outside the energy window: a failure here is recorded, never the verdict's loss."""
    if profile.e2e_input == "clip":
        return {"measured": False, "reason": "the profile measures a clip; frames in parallel run on image files"}
    return frames_in_parallel(
        model.model_path,
        model.postprocess_settings,
        profile.provider_names,
        model.session_settings.graph_optimization,
        images,
        2,
        profile.e2e_images,
    )


def gated_run(
    model: Detector,
    profile: Profile,
    bundle: Path,
    deploy: DeploySettings,
    setup: Dict[str, Any],
    out: Path,
    root: SysRoot,
    peak: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Model-only, end to end (+ energy, memory) and detections; with the conditions recorded meanwhile.
    ``peak``: :func:`~edgeproof.device.memory.reset_peak`'s record, from just before ``model``'s session
    was built (``None``: the peak is the process's since its start, and the record says so)."""
    images = sorted((bundle / "val" / "images").iterdir())
    meter = PowerMeter(root).start()
    try:
        idle = _idle(meter)
        sampler = Sampler(root).start()
        try:
            single = model_only(model, load_image(images[0]), profile.batch, profile.warmup, profile.runs)
            e2e, (t0, t1), mem = _timed_e2e(model, profile, bundle, deploy, images, meter, peak)
            # throughput with decode + letterbox of frame n+1 overlapped with frame n (latency reported apart);
            # outside the energy window, which belongs to the figure of record
            overlapped = (
                None if profile.e2e_input == "clip" else end_to_end_overlapped(model, images, 2, profile.e2e_images)
            )
            parallel = _parallel(model, profile, images)
            evaluated = evaluate(model, bundle, setup, out) if profile.evaluate_on_device else None
        finally:
            during = sampler.stop()
    finally:
        meter.stop()
    return {
        "model": single,
        "e2e": e2e,
        "e2e_overlapped": overlapped,
        "e2e_parallel": parallel,
        "eval": evaluated,
        "during": during,
        "energy": _energy(meter, idle, int(e2e["images"]), (t0, t1)),
        "memory": {**mem, "system_ram_delta_mb": _ram_delta(meter, idle, (t0, t1))},
    }


def _energy(
    meter: PowerMeter, idle: Optional[Tuple[float, float]], frames: int, window: Tuple[float, float]
) -> Dict[str, Any]:
    """The energy fields of the timed window ``window`` (``frames`` processed), with the idle window's draw and
    the meter's record: its sample times and the tegrastats lines it read."""
    energy = energy_fields(
        meter.window(*window),
        meter.window(*idle) if idle else None,
        frames,
        window,
        idle,
        meter.source,
        meter.interval_s,
        meter.unmeasured(*window),  # why, where the window has no figure: never a generic "no readings"
    )
    energy["energy"]["sample_times"] = meter.clock if meter.source else None
    energy["energy"]["tegrastats_lines"] = meter.lines.record()  # None: tegrastats not read (another source)
    return energy
