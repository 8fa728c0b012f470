"""A Jetson's view of the machine, from recorded Nano and Orin system roots (tests/fixtures/sysroot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.config import load_params
from edgeproof.device.conditions import Sampler, throttle_reasons
from edgeproof.device.sysinfo import SysRoot, machine_facts, parse_l4t, parse_nvpmodel, parse_tegrastats
from edgeproof.profiles import match_machine

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "sysroot"
PROFILES = load_params(REPO / "params.yaml").profiles


def _facts(name: str) -> dict:
    return machine_facts(SysRoot(FIXTURES / name))


def test_nano_readings():
    facts = _facts("jetson-nano")
    j = facts["jetson"]
    assert facts["arch"] == "aarch64"
    assert j["model"] == "NVIDIA Jetson Nano Developer Kit"  # NUL terminator dropped
    assert j["l4t"] == "32.7.1"
    assert j["power_mode"] == {"mode": "MAXN", "id": 0}  # the NVPM WARN line is skipped
    assert "NV Power Mode: MAXN" in j["jetson_clocks"]
    assert facts["thermal_c"]["CPU-therm"] == 44.0
    assert facts["clocks"]["cpu0"] == {"cur": 1479000, "max": 1479000, "hw_max": 1479000}
    assert facts["clocks"]["gpu:57000000.gpu"]["max"] == 921600000
    assert facts["oc_counters"] == {}
    assert facts["cpus_online"] == 4 and facts["load_avg_1m"] == 0.12


def test_orin_readings():
    facts = _facts("jetson-orin-nano")
    j = facts["jetson"]
    assert j["model"] == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    assert j["l4t"] == "36.4.3" and j["power_mode"]["mode"] == "MAXN_SUPER"
    assert "cv0-thermal" not in facts["thermal_c"]  # -256 C: no sensor
    assert facts["thermal_c"]["tj-thermal"] == pytest.approx(57.218)
    assert facts["oc_counters"] == {"hwmon3/oc1_event_cnt": 0, "hwmon3/oc2_event_cnt": 3, "hwmon3/oc3_event_cnt": 0}


@pytest.mark.parametrize(
    ("board", "matches"),
    [("jetson-nano", {"jetson-nano"}), ("jetson-orin-nano", {"jetson-orin-nano"}), ("x86-hot", {"cpu-ci"})],
)
def test_each_board_matches_exactly_its_profile(board, matches):
    facts = _facts(board)
    got = {name for name, p in PROFILES.items() if match_machine(p.match, facts)["matched"]}
    assert got == matches


def test_mismatch_names_the_failed_checks():
    result = match_machine(PROFILES["jetson-orin-nano"].match, _facts("jetson-nano"))
    failed = {c["name"]: c for c in result["checks"] if not c["ok"]}
    assert set(failed) == {"jetson_model", "l4t_min"}
    assert failed["l4t_min"]["found"] == "32.7.1"


def test_tegrastats_nano_and_orin_formats():
    nano = (FIXTURES / "jetson-nano/commands/tegrastats.txt").read_text().splitlines()
    r = parse_tegrastats(nano[1])
    assert r["temps_c"]["gpu"] == 43.5 and r["temps_c"]["pmic"] == 100.0
    assert r["cpu"][2] == {"load_pct": None, "mhz": None, "online": False}
    assert r["gpu_load_pct"] == 98 and r["gpu_mhz"] == 921 and r["ram_mb"] == [2124, 3964]
    assert r["power_mw"]["POM_5V_GPU"] == [1702, 1101]
    orin = parse_tegrastats((FIXTURES / "jetson-orin-nano/commands/tegrastats.txt").read_text().splitlines()[0])
    assert orin["temps_c"]["tj"] == 56.7 and len(orin["cpu"]) == 6 and orin["gpu_mhz"] is None
    assert orin["power_mw"]["VDD_IN"] == [9873, 8652]


def test_parsers_reject_other_formats():
    assert parse_l4t("R32 something") is None
    assert parse_nvpmodel("garbage") == {"mode": None, "id": None}


def _during(board: str) -> tuple[dict, dict]:
    root = SysRoot(FIXTURES / board)
    sampler = Sampler(root, interval_s=0.01).start()
    during = sampler.stop()
    return machine_facts(root), during


def test_nano_at_full_clocks_is_not_throttled_despite_the_pmic_placeholder():
    facts, during = _during("jetson-nano")
    assert during["samples"] >= 1 and len(sampler_temps := during["max_temp_c"]) > 3
    assert "PMIC-Die" not in sampler_temps and "tegrastats:pmic" not in sampler_temps
    assert throttle_reasons(PROFILES["jetson-nano"], facts, during) == []


def test_orin_with_a_slow_gpu_clock_and_a_busy_cpu_is_throttled():
    facts, during = _during("jetson-orin-nano")
    assert facts["cpus_online"] == 6 and facts["load_avg_1m"] == 3.9
    reasons = throttle_reasons(PROFILES["jetson-orin-nano"], facts, during)
    assert len(reasons) == 2 and "gpu:17000000.gpu at 612000000 of max 1020000000" in reasons[0]
    assert reasons[1] == "machine busy before the run: load 3.9 on 6 CPUs > 0.5/CPU"


def test_over_current_counters_that_moved_make_a_run_inconclusive():
    facts, during = _during("jetson-orin-nano")
    during["oc_counters_after"] = {**during["oc_counters_before"], "hwmon3/oc2_event_cnt": 5}
    reasons = throttle_reasons(PROFILES["jetson-orin-nano"], facts, during)
    assert any("oc2_event_cnt moved 3 -> 5" in r for r in reasons)


def test_hot_machine_and_wrong_power_mode():
    facts, during = _during("x86-hot")
    assert throttle_reasons(PROFILES["cpu-ci"], facts, during) == [
        "temperature x86_pkg_temp reached 97.0 C > max_temp_c 95"
    ]
    facts, during = _during("jetson-nano")
    facts["jetson"]["power_mode"] = {"mode": "5W", "id": 1}
    assert throttle_reasons(PROFILES["jetson-nano"], facts, during) == [
        "power mode '5W', profile requires 'MAXN' (sudo nvpmodel)"
    ]


def test_the_device_fingerprint_reads_jetson_facts_through_the_system_root(monkeypatch):
    from edgeproof.device.fingerprint import device_fingerprint

    monkeypatch.setenv("EDGEPROOF_SYSROOT", str(FIXTURES / "jetson-orin-nano"))
    jetson = device_fingerprint()["jetson"]
    assert jetson["l4t"] == "36.4.3" and jetson["power_mode"]["mode"] == "MAXN_SUPER"
    assert jetson["l4t_release"].startswith("# R36 (release), REVISION: 4.3")
    monkeypatch.setenv("EDGEPROOF_SYSROOT", str(FIXTURES / "x86-hot"))
    assert device_fingerprint()["jetson"] is None


def test_fingerprint_cpu_and_memory_through_the_system_root(monkeypatch):
    from edgeproof.device.fingerprint import device_fingerprint

    monkeypatch.setenv("EDGEPROOF_SYSROOT", str(FIXTURES / "jetson-nano"))
    fp = device_fingerprint()
    assert fp["cpu_model"] == "ARMv8 Processor rev 1 (v8l)" and fp["memory_gib"] == 3.9
    assert fp["jetson"]["model"] == "NVIDIA Jetson Nano Developer Kit"
