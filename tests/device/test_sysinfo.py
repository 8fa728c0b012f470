"""A Jetson's view of the machine, from recorded Nano and Orin system roots (tests/fixtures/sysroot)."""

from __future__ import annotations

import json
import logging
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
    return _during_at(FIXTURES / board)


def _during_at(path: Path) -> tuple[dict, dict]:
    root = SysRoot(path)
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


def test_orin_engines_that_idle_low_are_recorded_but_not_judged():
    """Issue 17.9: VIC/NVDEC/NVJPG/OFA idle at ~115 MHz and jetson_clocks leaves them be."""
    facts, during = _during("jetson-orin-nano")
    engines = facts["engine_clocks"]
    assert set(engines) == {
        "engine:15340000.vic",
        "engine:15480000.nvdec",
        "engine:15380000.nvjpg",
        "engine:15a50000.ofa",
    }
    assert engines["engine:15a50000.ofa"] == {"cur": 115200000, "max": 819200000, "hw_max": None}
    assert not [n for n in facts["clocks"] if n.startswith("engine:")]
    assert not [n for n in during["min_clock_ratio"] if n.startswith("engine:")]
    facts["load_avg_1m"] = 0.1
    for c in facts["clocks"].values():  # the GPU pinned at its maximum: nothing left to call throttling
        c["cur"] = c["max"]
    during["min_clock_ratio"] = {
        n: {"ratio": 1.0, "cur": c["max"], "max": c["max"]} for n, c in facts["clocks"].items()
    }
    assert throttle_reasons(PROFILES["jetson-orin-nano"], facts, during) == []


def test_gpu_load_and_emc_clock_are_recorded_from_tegrastats():
    _facts_nano, nano = _during("jetson-nano")
    assert nano["gpu_load_pct"] == {"mean": 98.5, "min": 98.0, "max": 99.0, "samples": 2}
    assert nano["emc_mhz"] == {"mean": 1600.0, "min": 1600.0, "max": 1600.0, "samples": 2}
    assert nano["emc_load_pct"]["max"] == 4.0
    _facts_orin, orin = _during("jetson-orin-nano")
    assert orin["gpu_load_pct"]["mean"] == 98.0 and orin["emc_mhz"] is None  # R36 prints EMC_FREQ without a clock


def test_over_current_counters_that_moved_make_a_run_inconclusive():
    facts, during = _during("jetson-orin-nano")
    during["oc_counters_after"] = {**during["oc_counters_before"], "hwmon3/oc2_event_cnt": 5}
    reasons = throttle_reasons(PROFILES["jetson-orin-nano"], facts, during)
    assert any("oc2_event_cnt moved 3 -> 5" in r for r in reasons)


def _good_orin(tmp_path: Path, change=None) -> tuple[dict, dict]:
    """The recorded Orin with its GPU at its maximum and an idle CPU (not throttled), then ``change(root)``."""
    import shutil

    root = tmp_path / "orin"
    shutil.copytree(FIXTURES / "jetson-orin-nano", root)
    (root / "sys/class/devfreq/17000000.gpu/cur_freq").write_text("1020000000\n")
    (root / "proc/loadavg").write_text("0.50 0.40 0.30 1/801 5120\n")
    if change is not None:
        change(root)
    return _during_at(root)


GPU = "sys/class/devfreq/17000000.gpu"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: __import__("shutil").rmtree(r / GPU), "no GPU clock reading (devfreq gpu)"),
        (lambda r: (r / GPU / "cur_freq").write_text("garbage\n"), "clock gpu:17000000.gpu not readable (cur None"),
        (lambda r: (r / GPU / "cur_freq").write_text("0\n"), "clock gpu:17000000.gpu not readable (cur 0, max"),
        (
            lambda r: __import__("shutil").rmtree(r / "sys/class/hwmon/hwmon3"),
            "no over-current counters (oc*_event_cnt) on a Jetson Orin",
        ),
    ],
)
def test_a_clock_or_over_current_record_that_is_not_there_is_a_reason_never_a_cool_board(tmp_path, change, reason):
    """docs/jetson.md: a missing clock or over-current record is inconclusive, never a board at full clocks."""
    facts, during = _good_orin(tmp_path / "good")
    assert throttle_reasons(PROFILES["jetson-orin-nano"], facts, during) == []
    facts, during = _good_orin(tmp_path / "bad", change)
    reasons = throttle_reasons(PROFILES["jetson-orin-nano"], facts, during)
    assert len(reasons) == 1 and reasons[0].startswith(reason), reasons


def test_a_counter_read_before_the_run_only_and_a_nano_without_counters():
    facts, during = _during("jetson-orin-nano")
    during["oc_counters_after"].pop("hwmon3/oc2_event_cnt")
    reasons = throttle_reasons(PROFILES["jetson-orin-nano"], facts, during)
    assert "over-current counter hwmon3/oc2_event_cnt read only before the run: cannot show it did not move" in reasons
    facts, during = _during("jetson-nano")  # L4T R32 exposes none: what the board has, not a missing record
    assert during["oc_counters_before"] == {} and throttle_reasons(PROFILES["jetson-nano"], facts, during) == []


def test_an_offline_core_is_not_a_clock_to_judge(tmp_path):
    def offline(root: Path) -> None:
        (root / "sys/devices/system/cpu/cpu5/online").write_text("0\n")
        (root / "sys/devices/system/cpu/cpu5/cpufreq/scaling_cur_freq").unlink()  # its policy reads EBUSY

    facts, during = _good_orin(tmp_path, offline)
    assert "cpu5" not in facts["clocks"] and "cpu4" in facts["clocks"]
    assert throttle_reasons(PROFILES["jetson-orin-nano"], facts, during) == []


def test_the_preflight_refuses_a_gpu_clock_it_cannot_read(bundle, tmp_path):
    from edgeproof.device.preflight import preflight

    root = tmp_path / "orin"
    _good_orin(tmp_path, lambda r: (r / GPU / "cur_freq").write_text("0\n"))
    report = preflight(bundle, "jetson-orin-nano", SysRoot(root), tmp_path / "engines")
    clocks = next(c for c in report["checks"] if c["name"] == "clocks_at_max")
    assert not clocks["ok"] and "clock gpu:17000000.gpu not readable (cur 0" in clocks["detail"]


def test_hot_machine_and_wrong_power_mode():
    facts, during = _during("x86-hot")
    assert throttle_reasons(PROFILES["cpu-ci"], facts, during) == [
        "temperature x86_pkg_temp reached 97.0 C > max_temp_c 95"
    ]
    facts, during = _during("jetson-nano")
    facts["jetson"]["power_mode"] = {"mode": "5W", "id": 1}
    assert throttle_reasons(PROFILES["jetson-nano"], facts, during) == [
        "power mode '5W', profile requires 'MAXN' (sudo nvpmodel -m 0)"
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


def test_power_mode_ids_are_the_boards_own():
    """Issue 17.10: nvpmodel ids differ by board (the runner set-up used 0 for every board)."""
    from edgeproof.device.sysinfo import power_mode_id

    orin = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    assert [power_mode_id(orin, m)[0] for m in ("15W", "25W", "MAXN_SUPER", "7W")] == [0, 1, 2, 3]
    nano = "NVIDIA Jetson Nano Developer Kit"
    assert [power_mode_id(nano, m)[0] for m in ("MAXN", "5W")] == [0, 1]
    assert power_mode_id(nano, "MAXN_SUPER") == (
        None,
        "Jetson Nano has no power mode 'MAXN_SUPER' (known: ['MAXN', '5W'])",
    )
    assert power_mode_id(None, "MAXN")[0] is None


def test_the_power_mode_command_prints_the_id_for_the_profile_on_this_board(bundle, capsys):
    from edgeproof.device.__main__ import main

    assert (
        main(
            [
                "--sysroot",
                str(FIXTURES / "jetson-orin-nano"),
                "power-mode",
                "--bundle",
                str(bundle),
                "--profile",
                "jetson-orin-nano",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "2\n"
    assert (
        main(
            [
                "--sysroot",
                str(FIXTURES / "jetson-nano"),
                "power-mode",
                "--bundle",
                str(bundle),
                "--profile",
                "jetson-nano",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "0\n"
    assert (
        main(
            [
                "--sysroot",
                str(FIXTURES / "jetson-nano"),
                "power-mode",
                "--bundle",
                str(bundle),
                "--profile",
                "jetson-orin-nano",
            ]
        )
        == 2
    )
    assert main(["power-mode", "--bundle", str(bundle), "--profile", "cpu-ci"]) == 2  # no power mode required
    capsys.readouterr()
    assert main(["--sysroot", str(FIXTURES / "jetson-orin-nano"), "power-mode", "--mode", "7W"]) == 0
    assert capsys.readouterr().out == "3\n"
    assert main(["power-mode"]) == 2


def test_wrong_power_mode_names_the_boards_nvpmodel_command():
    facts, during = _during("jetson-orin-nano")
    facts["jetson"]["power_mode"] = {"mode": "15W", "id": 0}
    reasons = throttle_reasons(PROFILES["jetson-orin-nano"], facts, during)
    assert "power mode '15W', profile requires 'MAXN_SUPER' (sudo nvpmodel -m 2)" in reasons


def test_orin_before_jetpack_6_2_has_no_maxn_super_and_does_not_match():
    facts = _facts("jetson-orin-nano")
    facts["jetson"]["l4t"] = "36.3.0"  # JetPack 6.0/6.1
    result = match_machine(PROFILES["jetson-orin-nano"].match, facts)
    assert not result["matched"] and [c["name"] for c in result["checks"] if not c["ok"]] == ["l4t_min"]


def test_preflight_names_the_nvpmodel_command_for_this_board(bundle, tmp_path):
    import shutil

    from edgeproof.device.preflight import preflight

    root = tmp_path / "orin-15w"
    shutil.copytree(FIXTURES / "jetson-orin-nano", root)
    (root / "commands/nvpmodel-q.txt").write_text("NV Power Mode: 15W\n0\n")
    checks = {c["name"]: c for c in preflight(bundle, "jetson-orin-nano", SysRoot(root), tmp_path / "e")["checks"]}
    assert not checks["power_mode"]["ok"]
    assert checks["power_mode"]["detail"] == "'15W' (profile: 'MAXN_SUPER'; run `sudo nvpmodel -m 2`)"


def test_facts_with_a_profile_refuses_a_board_the_profile_never_matches(tmp_path, capsys):
    """docs12 review: the Orin profile needs L4T 36.4.3+ (JetPack 6.2) while the runner set-up accepted any
    R36, so a JetPack 6.0 board was set up and then failed machine_match on every pull request."""
    import shutil

    from edgeproof.device.__main__ import main

    params = str(Path(__file__).resolve().parents[2] / "params.yaml")
    orin = ["--sysroot", str(FIXTURES / "jetson-orin-nano"), "facts", "--profile", "jetson-orin-nano"]
    assert main([*orin, "--rules-params", params]) == 0
    assert json.loads(capsys.readouterr().out)["profiles"]["jetson-orin-nano"]["matched"] is True
    old = tmp_path / "orin-jp60"
    shutil.copytree(FIXTURES / "jetson-orin-nano", old)
    release = old / "etc/nv_tegra_release"
    release.write_text(release.read_text().replace("REVISION: 4.3", "REVISION: 3.0"))
    argv = ["--sysroot", str(old), "facts", "--profile", "jetson-orin-nano", "--rules-params", params]
    assert main(argv) == 4
    checks = json.loads(capsys.readouterr().out)["profiles"]["jetson-orin-nano"]["checks"]
    assert {"name": "l4t_min", "expected": "36.4.3", "found": "36.3.0", "ok": False} in checks
    unknown = ["facts", "--profile", "no-such-profile", "--rules-params", params]
    assert main(unknown) == 2


def test_facts_with_a_profile_and_nowhere_to_read_it_from_is_a_clear_error(caplog, capsys):
    """review diff12 #3: ``facts --profile NAME`` without --rules-params or --bundle was a TypeError
    traceback (``None / "profiles.json"``), exit 1; the documented exits are 0 / 2 / 4."""
    from edgeproof.device.__main__ import main

    argv = ["--sysroot", str(FIXTURES / "jetson-orin-nano"), "facts", "--profile", "jetson-orin-nano"]
    with caplog.at_level(logging.ERROR, logger="edgeproof.device"):
        assert main(argv) == 2
    assert "needs --rules-params FILE (a params.yaml) or --bundle DIR" in caplog.text
    assert capsys.readouterr().out == ""  # no facts printed for a question that was not asked right
