"""Energy and memory per frame (issue 20): recorded tegrastats traces with hand-computed integrals,
a RAPL counter that wraps, and this process's memory measured for real."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgeproof.device.energy import PowerMeter
from edgeproof.device.energy_record import energy_fields
from edgeproof.device.memory import MemoryMonitor, growth, read_status_kb
from edgeproof.device.power_window import window_power
from edgeproof.device.rapl import rapl_delta_uj, read_rapl
from edgeproof.device.sysinfo import SysRoot
from edgeproof.device.tegrastats import trace_samples

POWER = Path(__file__).resolve().parents[1] / "fixtures" / "power"


def _trace(name: str) -> tuple[str | None, list]:
    return trace_samples((POWER / name).read_text().splitlines(), interval_s=1.0)


def _whole(name: str) -> dict:
    _rail, samples = _trace(name)
    return window_power(samples, samples[0][0], samples[-1][0])


@pytest.mark.parametrize(
    ("trace", "rail", "mj", "mean_w", "peak_w", "samples", "missing"),
    [
        ("nano-r32-constant.txt", "POM_5V_IN", 20000.0, 5.0, 5.0, 5, 0),
        ("nano-r32-step.txt", "POM_5V_IN", 18000.0, 6.0, 8.0, 4, 0),
        ("nano-r32-missing.txt", "POM_5V_IN", 24000.0, 6.0, 8.0, 4, 1),
        ("orin-r36-constant.txt", "VDD_IN", 28000.0, 7.0, 7.0, 5, 0),
        ("orin-r36-overcurrent.txt", "VDD_IN", 36000.0, 9.0, 15.0, 5, 0),
    ],
)
def test_recorded_traces_integrate_to_the_hand_computed_energy(trace, rail, mj, mean_w, peak_w, samples, missing):
    got_rail, _ = _trace(trace)
    stats = _whole(trace)
    assert got_rail == rail
    assert stats["energy_mj"] == pytest.approx(mj) and stats["mean_w"] == pytest.approx(mean_w)
    assert stats["peak_w"] == pytest.approx(peak_w)
    assert (stats["samples"], stats["missing"]) == (samples, missing)


def test_a_window_between_samples_is_interpolated_at_its_edges():
    _rail, samples = _trace("nano-r32-step.txt")  # 4 W at 0-1 s, ramps to 8 W at 2 s
    stats = window_power(samples, 0.5, 1.5)  # 4 W for 0.5 s, then 4 -> 6 W over 0.5 s
    assert stats["energy_mj"] == pytest.approx(2000.0 + 2500.0)
    assert window_power(samples, 1.0, 1.0) is None and window_power([(0.0, None)], 0.0, 1.0) is None


def test_gross_and_net_mj_per_frame_with_the_idle_draw_subtracted():
    run, idle = _whole("nano-r32-step.txt"), _whole("nano-r32-idle.txt")
    fields = energy_fields(run, idle, 30, (0.0, 3.0), (-3.0, 0.0), "tegrastats:POM_5V_IN", 1.0)
    assert fields["energy_mj_per_frame"] == pytest.approx(600.0)  # 18000 mJ / 30 frames
    assert fields["energy_net_mj_per_frame"] == pytest.approx(450.0)  # (18000 - 1.5 W * 3 s) / 30
    assert fields["power_w_mean"] == pytest.approx(6.0) and fields["power_w_peak"] == pytest.approx(8.0)
    e = fields["energy"]
    assert e["measurable"] and e["reason"] is None and e["source"] == "tegrastats:POM_5V_IN"
    assert (e["interval_ms"], e["samples"], e["idle_w"], e["idle_interval_s"]) == (1000.0, 4, 1.5, 3.0)
    orin = energy_fields(_whole("orin-r36-overcurrent.txt"), _whole("orin-r36-idle.txt"), 60, (0, 4), (-3, 0), "x", 1)
    assert orin["energy_mj_per_frame"] == pytest.approx(600.0) and orin["energy_net_mj_per_frame"] == pytest.approx(400)
    assert orin["power_w_peak"] == pytest.approx(15.0)


def test_no_idle_reading_gives_no_net_figure_and_no_reading_is_never_a_number():
    fields = energy_fields(_whole("orin-r36-constant.txt"), None, 40, (0.0, 4.0), None, "tegrastats:VDD_IN", 1.0)
    assert fields["energy_mj_per_frame"] == pytest.approx(700.0) and fields["energy_net_mj_per_frame"] is None
    none = energy_fields(None, None, 40, (0.0, 4.0), None, None, 0.1, "no RAPL here")
    assert none["energy"]["measurable"] is False and none["energy"]["reason"] == "no RAPL here"
    assert [none[k] for k in ("energy_mj_per_frame", "energy_net_mj_per_frame", "power_w_mean", "power_w_peak")] == [
        None
    ] * 4


def _rapl(root: Path, energy: int, top: int = 262143328850) -> None:
    zone = root / "sys/class/powercap/intel-rapl:0"
    (root / "sys/class/powercap/intel-rapl:0:0").mkdir(parents=True, exist_ok=True)  # a sub-zone: not counted
    (root / "sys/class/powercap/intel-rapl:0:0/energy_uj").write_text("999999\n")
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{top}\n")


def test_rapl_counter_wrap_around(tmp_path):
    _rapl(tmp_path, 262143000000)
    before, reason = read_rapl(SysRoot(tmp_path))
    assert reason is None and list(before) == ["/sys/class/powercap/intel-rapl:0"]
    _rapl(tmp_path, 171150)  # wrapped: 328850 uJ to the top, then 171150 more
    after, _ = read_rapl(SysRoot(tmp_path))
    assert rapl_delta_uj(before, after) == 500000
    _rapl(tmp_path, 171250)
    assert rapl_delta_uj(after, read_rapl(SysRoot(tmp_path))[0]) == 100


def test_rapl_unreadable_and_absent_say_why(tmp_path):
    assert read_rapl(SysRoot(tmp_path))[1].startswith("no RAPL powercap zones")
    _rapl(tmp_path, 5)
    (tmp_path / "sys/class/powercap/intel-rapl:0/energy_uj").write_text("not a number")
    assert read_rapl(SysRoot(tmp_path))[1].endswith(
        "energy_uj holds 'not a number', not a counter (a non-negative integer)"
    )


def test_energy_here_reads_not_measurable_with_the_reason():
    meter = PowerMeter(SysRoot(Path("/"))).start()
    t0 = meter.mark()
    t1 = meter.mark()
    meter.stop()
    if meter.source is not None:
        pytest.skip(f"this machine measures power ({meter.source})")
    fields = energy_fields(meter.window(t0, t1), None, 10, (t0, t1), None, meter.source, 0.1, meter.reason)
    assert fields["energy"]["measurable"] is False and fields["energy_mj_per_frame"] is None
    assert "RAPL" in fields["energy"]["reason"] or "energy_uj" in fields["energy"]["reason"]
    recorded = PowerMeter(SysRoot(POWER)).start()
    assert recorded.source is None and "never replayed" in recorded.reason


def test_memory_trend_leak_versus_one_off_growth():
    flat = growth([100.0] * 32, 32)
    assert flat == {"growth_mb": 0.0, "growth_kib_per_frame": 0.0, "leak": False, "leak_reason": None, "samples": 32}
    steady = [100.0 + i for i in range(32)]  # 1 MB a frame (one sample per frame)
    assert growth(steady, 32)["leak"] and growth(steady, 32)["growth_mb"] == pytest.approx(24.0)
    assert growth(steady, 32)["growth_kib_per_frame"] == pytest.approx(1024.0)
    for at in (4, 12, 16, 20, 28):  # an arena that grew once, wherever in the loop
        one_off = [100.0] * at + [150.0] * (32 - at)
        assert growth(one_off, 32)["growth_kib_per_frame"] == 0.0 and not growth(one_off, 32)["leak"]
    short = growth([1.0, 9.0], 2)
    assert short["growth_mb"] == 8.0 and short["growth_kib_per_frame"] is None  # too short for a rate...
    assert short["leak"] is None and short["leak_reason"].startswith("2 RSS samples over 2 frames")  # ...not judged
    assert growth([1.0], 1)["growth_mb"] is None


def test_memory_of_this_process_is_read_for_real():
    status = read_status_kb()
    assert status["VmHWM"] >= status["VmRSS"] > 1000
    monitor = MemoryMonitor(interval_s=0.005).start()
    kept = [bytearray(1024 * 1024) for _ in range(4)]
    got = monitor.stop(4)
    assert got["peak_memory_mb"] >= got["memory"]["rss_end_mb"] > 1 and got["memory"]["measurable"]
    assert len(kept) == 4


class _LeakingSession:
    """A fake ORT session whose every run keeps 1 MiB of fresh pages (touched, so they are resident; mapped
    anew, so no allocator can hand back memory that an earlier test left resident)."""

    def __init__(self) -> None:
        self.kept: list = []

    def run(self) -> None:
        self.kept.append(_resident(1))


def test_a_leaking_session_is_reported_as_growing():
    import time

    session = _LeakingSession()
    monitor = MemoryMonitor(interval_s=0.002).start()
    for _ in range(60):
        session.run()
        time.sleep(0.003)
    got = monitor.stop(60)
    assert got["memory_leak"] is True and got["memory_growth_mb"] > 20


def test_cpu_ci_bench_carries_energy_memory_and_setup_facts(bundle):
    """On this machine: memory measured for real, energy not measurable with the reason, nothing invented."""
    import json

    from edgeproof.device.measure import run_measure

    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["peak_memory_mb"] > 10 and bench["memory_growth_mb"] < 5 and bench["memory"]["rss_samples"] >= 2
    if bench["memory"]["rss_samples"] >= 4:  # four frames: a rate wherever four RSS samples were taken
        assert bench["memory_leak"] is False and bench["memory"]["leak_reason"] is None
    else:  # a few milliseconds of frames: too few samples for a rate, not judged (never "no leak")
        assert bench["memory_leak"] is None and "RSS samples over 4 frames" in bench["memory"]["leak_reason"]
    assert bench["model_mb"] == round((bundle / bench["model_path"]).stat().st_size / 1e6, 6)  # the headline's MB
    assert bench["engine_mb"] is None and bench["trtexec_ratio"] is None and bench["system_ram_delta_mb"] is None
    if bench["energy"]["source"] is None:  # no tegrastats, no readable RAPL here
        assert bench["energy"]["measurable"] is False and bench["energy"]["reason"]
        assert bench["energy_mj_per_frame"] is None and bench["power_w_mean"] is None
        assert bench["energy"]["idle_w"] is None and bench["energy"]["frames"] == 4
    assert bench["image_backend"] in ("opencv", "pillow") and bench["decode"] == "pillow"
    assert bench["device_name"] == bench["device"]["cpu_model"]  # no Jetson: the CPU model
    assert bench["providers"]["cpu_fallback"]["how"].startswith("not needed")


def test_the_device_name_is_the_jetson_model_not_the_cpu():
    from edgeproof.device.results import device_name
    from edgeproof.device.sysinfo import machine_facts

    facts = machine_facts(SysRoot(POWER.parent / "sysroot" / "jetson-nano"))
    assert device_name(facts, {"cpu_model": "ARMv8 Processor rev 1 (v8l)"}) == "NVIDIA Jetson Nano Developer Kit"


def test_a_stale_reading_far_from_the_window_is_not_held_as_a_measurement():
    samples = [(0.0, 5000.0), (1.0, 5000.0)]
    assert window_power(samples, 0.5, 1.2, interval_s=0.4)["energy_mj"] == pytest.approx(3500.0)
    assert window_power(samples, 5.0, 6.0, interval_s=0.1) is None  # tegrastats stopped printing


FAKE_TEGRASTATS = """#!/bin/sh
# a board whose input rail draws 6000 mW, Orin format, one line every 50 ms
while true; do
  echo "12-06-2026 18:40:00 RAM 3012/7620MB CPU [35%@1728] GR3D_FREQ 97% tj@56.7C VDD_IN 6000mW/6000mW"
  sleep 0.05
done
"""


# The tests' model runs a frame in well under a millisecond: 4 timed frames would fit between two readings
# of a sensor read every 50 ms, and a window with no reading inside is not measurable (power_window). A
# board's frame takes tens of ms; so does each end-to-end frame here.
FRAME_S = 0.04


def measure_with_fake_tegrastats(
    bundle, tmp_path, monkeypatch, script=FAKE_TEGRASTATS, idle_s=0.4, frame_s=FRAME_S
) -> dict:
    """``bench.json`` of a whole cpu-ci measurement of ``bundle`` with ``script`` as tegrastats on PATH, each
    end-to-end frame taking at least ``frame_s`` (its image read that long)."""
    import json
    import time

    import edgeproof.device.gated as gated
    import edgeproof.runtime.timing as timing
    from edgeproof.device.measure import run_measure

    read = timing.load_image

    def slow_read(path):
        time.sleep(frame_s)
        return read(path)

    monkeypatch.setattr(timing, "load_image", slow_read)

    fake = tmp_path / "bin" / "tegrastats"
    fake.parent.mkdir()
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(gated, "IDLE_S", idle_s)
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    return json.loads((out / "bench.json").read_text())


def test_live_tegrastats_through_a_whole_measurement(bundle, tmp_path, monkeypatch):
    """The live path end to end with a stand-in tegrastats on PATH: idle window, e2e window, bench.json."""
    bench = measure_with_fake_tegrastats(bundle, tmp_path, monkeypatch)
    e = bench["energy"]
    assert e["measurable"] and e["source"] == "tegrastats:VDD_IN" and e["interval_ms"] == 100.0
    assert e["idle_w"] == pytest.approx(6.0) and e["idle_interval_s"] == pytest.approx(0.4, abs=0.1)
    assert bench["power_w_mean"] == pytest.approx(6.0) and bench["power_w_peak"] == pytest.approx(6.0)
    frames = bench["e2e"]["images"]
    assert bench["energy_mj_per_frame"] == pytest.approx(6.0 * 1000 * e["window_s"] / frames, rel=0.05)
    assert bench["energy_net_mj_per_frame"] == pytest.approx(0.0, abs=1e-6)  # same draw as idle: nothing net
    assert bench["system_ram_delta_mb"] == 0.0


def _footprint_of(tmp_path, raw):
    from edgeproof.device.footprint import isolated_footprint
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.session import SessionSettings
    from tests.conftest import make_fixed_detector
    from tests.device.builders import IMGSZ, write_val

    model = make_fixed_detector(tmp_path / f"m{raw.shape[1]}.onnx", raw, IMGSZ, {0: "thing"})
    write_val(tmp_path, 2)
    images = sorted((tmp_path / "data/prepared/images/val").iterdir())
    return isolated_footprint(model, images, SessionSettings(), DeploySettings(), frames=4)


def test_a_models_memory_is_measured_in_a_process_of_its_own(tmp_path):
    """Build side: the release process holds torch and every variant in turn, so each model is measured
    in a fresh interpreter; what this (test) process holds must not count, and a bigger model must."""
    from tests.device.builders import fixed_raw

    held = _resident(256)  # this process now holds 256 MiB more than the child ever will
    small = _footprint_of(tmp_path, fixed_raw())
    big_raw = np.zeros((5, 2_000_000), np.float32)  # a 40 MB constant output: weights the session must hold
    big = _footprint_of(tmp_path, big_raw)
    held.close()
    assert small["memory"]["isolated"] is True and small["frames"] == 4
    assert small["runtime_mb"] > 10 and small["peak_memory_mb"] >= small["runtime_mb"]
    assert small["peak_memory_mb"] < 250  # the 256 MiB held here are not counted
    assert big["model_added_mb"] - small["model_added_mb"] > 38  # at least the 40 MB constant, once
    assert big["model_file_mb"] > 38 > small["model_file_mb"]


def test_a_footprint_that_fails_names_the_model(tmp_path):
    from edgeproof.device.footprint import isolated_footprint
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.session import SessionSettings

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match=r"broken\.onnx: the memory footprint failed"):
        isolated_footprint(bad, [bad], SessionSettings(), DeploySettings(), frames=1)


def _resident(mib: int):
    import mmap

    area = mmap.mmap(-1, mib * 1024 * 1024)
    for offset in range(0, len(area), mmap.PAGESIZE):
        area[offset] = 1
    return area


def test_the_build_side_benchmark_records_peak_memory_per_variant(tmp_path):
    from edgeproof import benchmark
    from edgeproof.config import parse_params
    from tests.conftest import make_fixed_detector
    from tests.device.builders import IMGSZ, fixed_raw, write_val

    model = make_fixed_detector(tmp_path / "m.onnx", fixed_raw(), IMGSZ, {0: "thing"})
    write_val(tmp_path, 2)
    images = sorted((tmp_path / "data/prepared/images/val").iterdir())
    params = parse_params({"benchmark": {"warmup": 0, "runs": 2, "e2e_images": 2}})
    out = benchmark.run_benchmark(model, images, params.benchmark, params.deploy)
    assert out["peak_memory_mb"] > 10 and out["memory"]["isolated"] is True
    assert out["memory"]["model_sha256"] == out["model_sha256"]  # the footprint is of the model timed
    assert "peak_memory_mb" not in benchmark.run_benchmark(model, images, params.benchmark, params.deploy, apart=False)
    par = out["e2e_parallel"]  # frames in parallel, one per core: informational throughput
    if (os.cpu_count() or 1) > 1:
        assert par["measured"] is True and par["workers"] == os.cpu_count() and par["images"] == 2
        assert out["fps_e2e_parallel"] == par["fps"] > 0
    else:
        assert par == {"measured": False, "reason": "one core"} and out["fps_e2e_parallel"] is None
    gpu = params.benchmark.model_copy(update={"providers": ["CUDAExecutionProvider"]})
    assert benchmark.parallel_throughput(model, images, gpu, params.deploy)["measured"] is False


SYSROOTS = POWER.parent / "sysroot"


def test_ina3221_input_rail_on_orin_hwmon_and_nano_iio():
    from edgeproof.device.ina3221 import input_rail

    rail, read = input_rail(SysRoot(SYSROOTS / "jetson-orin-nano"))
    assert rail == "VDD_IN" and read() == pytest.approx(5056 * 1850 / 1000)  # mV x mA
    rail, read = input_rail(SysRoot(SYSROOTS / "jetson-nano"))
    assert rail == "POM_5V_IN" and read() == 4867.0
    assert input_rail(SysRoot(SYSROOTS / "x86-hot")) == (None, None)


def test_the_meter_prefers_the_ina3221_nodes_and_times_each_read(monkeypatch):
    import time

    root = SysRoot(SYSROOTS / "jetson-orin-nano")
    root.recorded = False  # read the recorded nodes as if live: a board drawing a constant 9.3536 W
    meter = PowerMeter(root, interval_s=0.01).start()
    t0 = meter.mark()
    time.sleep(0.2)
    t1 = meter.mark()
    meter.stop()
    stats = meter.window(t0, t1)
    assert meter.source == "ina3221:VDD_IN" and meter.clock == "read time (sysfs)"
    assert stats["mean_w"] == pytest.approx(9.3536) and stats["samples"] >= 5
    assert stats["energy_mj"] == pytest.approx(9.3536 * (t1 - t0) * 1000)
    assert meter.ram_in_use_mb(t0, t1) is None  # this fixture has no /proc/meminfo


def test_used_ram_from_meminfo(tmp_path):
    from edgeproof.device.energy import used_ram_mb

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal:        4059272 kB\nMemFree: 1 kB\nMemAvailable:    2000000 kB\n")
    assert used_ram_mb(SysRoot(tmp_path)) == pytest.approx((4059272 - 2000000) / 1024)
    assert used_ram_mb(SysRoot(SYSROOTS / "jetson-nano")) is None  # its recorded meminfo has no MemAvailable


def test_the_devices_parallel_run_never_costs_the_verdict_its_figures(tmp_path):
    from edgeproof.device.gated import _parallel
    from edgeproof.profiles import parse_profiles
    from edgeproof.runtime.detector import Detector
    from tests.conftest import make_fixed_detector
    from tests.device.builders import IMGSZ, fixed_raw, write_val

    model = Detector(make_fixed_detector(tmp_path / "m.onnx", fixed_raw(), IMGSZ, {0: "thing"}))
    write_val(tmp_path, 2)
    images = sorted((tmp_path / "data/prepared/images/val").iterdir())
    profiles = parse_profiles({"cpu": {"e2e_images": 2}, "clip": {"e2e_input": "clip"}})
    assert "clip" in _parallel(model, profiles["clip"], images)["reason"]
    broken = [tmp_path / "missing.jpg"]  # a failure inside the informational run is recorded, not raised
    got = _parallel(model, profiles["cpu"], broken)
    if (os.cpu_count() or 1) > 1:
        assert got["measured"] is False and "missing.jpg" in got["reason"]


def test_a_counter_window_with_its_readings_on_one_side_is_not_measured():
    """RAPL is a cumulative counter: with both readings before the window, its energy was the flat value
    held across it (0 mJ) on one reading, and the board called that measurable (the gate then refused the
    board's own file for too few readings)."""
    from edgeproof.device.power_window import counter_window

    before = [(0.0, 1000.0), (1.0, 3000.0)]
    assert counter_window(before, 2.0, 3.0) is None
    around = [(0.0, 1000.0), (2.5, 3000.0), (4.0, 5000.0)]
    got = counter_window(around, 2.0, 3.0)
    assert got is not None and got["samples"] == 3 and got["energy_mj"] > 0


def test_a_model_file_has_one_size_in_the_headline_and_on_the_board(tmp_path):
    """Review energymem, finding 6: the headline's model_mb was 10^6 bytes and the device bench.json's 2^20
    (2.9 against 2.761908 for one 2 896 070-byte int8 file); an engine's size was 2^20 too."""
    from edgeproof.device.engine import engines_mb
    from edgeproof.headline import headline_metrics
    from edgeproof.io import file_mb

    model = tmp_path / "int8.onnx"
    model.write_bytes(b"\0" * 2_896_070)
    shown = headline_metrics({}, {}, {}, {}, model)["model_mb"]
    assert shown == 2.9 and file_mb(model) == 2.89607 and round(file_mb(model), 2) == shown
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "model_0.engine").write_bytes(b"\0" * 2 * 1024 * 1024)
    assert engines_mb([tmp_path / "engines"]) == 2.097
