"""The board (PyYAML) and the pipeline (ruamel.yaml, as DVC) read a params file's profiles the same
(review finding 5): YAML 1.1's octal ``0200`` (128), ``1e-05`` (a string: DVC's own ``-S`` writes it) and
``off`` (false) made the board measure other numbers or refuse every run of a file ``edgeproof params``
accepted. The board's reader now resolves plain scalars by YAML 1.2, and ``load_params`` refuses a file
whose profiles the two readers still read differently, naming the key."""

from __future__ import annotations

import pytest

from edgeproof.config import ParamsError, load_params
from edgeproof.device.profile_source import read_rules_profiles
from edgeproof.params_file import read_params_yaml
from edgeproof.profiles import parse_profiles
from tests.device.conftest import REPO

# (line in the committed params.yaml, as a team or `dvc exp run -S` may write it, the value DVC reads)
EDITS = [
    ("    runs: 200\n", "    runs: 0200\n", ("runs", 200)),
    ("    warmup: 20\n", "    warmup: 0020\n", ("warmup", 20)),
    ("    max_temp_c: 80.0\n", "    max_temp_c: 080\n", ("max_temp_c", 80.0)),
    ("    power_mode: MAXN\n", "    power_mode: off\n", ("power_mode", "off")),
    ("      max_power_w: 10.0\n", "      max_power_w: 1e1\n", ("gate.max_power_w", 10.0)),
    ("      max_map_drop: 0.01\n", "      max_map_drop: 1e-05\n", ("regression.max_map_drop", 1e-05)),
    ("      max_latency_p95_ms: 100.0\n", "      max_latency_p95_ms: 1e+3\n", ("gate.max_latency_p95_ms", 1000.0)),
]


def _nano(profiles, dotted):
    value = profiles["jetson-nano"]
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("line", "edited", "expected"), EDITS, ids=[e[1].strip() for e in EDITS])
def test_the_board_reads_a_profile_value_as_dvc_does(tmp_path, line, edited, expected):
    text = (REPO / "params.yaml").read_text()
    nano_at = text.index("  jetson-nano:\n")
    path = tmp_path / "params.yaml"
    path.write_text(text[:nano_at] + text[nano_at:].replace(line, edited, 1))
    as_dvc = parse_profiles(read_params_yaml(path)["profiles"])
    key, value = expected
    assert _nano(as_dvc, key) == value
    assert read_rules_profiles(path) == as_dvc  # the board measures and judges with the same numbers
    assert load_params(path).profiles == as_dvc


def test_profiles_the_two_readers_read_differently_fail_when_params_are_loaded(tmp_path):
    """A ``%YAML 1.1`` directive makes ruamel (DVC) read ``0200`` as octal 128; the board reads 200."""
    text = (REPO / "params.yaml").read_text().replace("    runs: 200\n", "    runs: 0200\n", 1)
    path = tmp_path / "params.yaml"
    path.write_text("%YAML 1.1\n---\n" + text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == (
        f"{path}: profiles.jetson-nano.runs: read as 128 by the pipeline (as DVC) but 200 by the board (PyYAML); "
        "write it plainly"
    )


def _cpu(option) -> dict:
    return {"cpu": {"providers": [{"name": "CPUExecutionProvider", "options": {"arena": option}}]}}


def test_one_strict_key_by_key_diff_for_the_boards_reading_and_a_proposal(tmp_path, monkeypatch):
    """Two copies of the flattened diff, each with its own equality: a provider option read as ``true`` by
    one side and ``1`` by the other is equal to Python's ``==`` inside the providers list, so neither the
    board's check nor the proposal's list showed it. One helper (``settings.changed_settings``), strict."""
    import edgeproof.device.profile_source as profile_source
    from edgeproof.settings import changed_settings
    from edgeproof.verdict.proposal import MISSING, changes

    base, proposed = parse_profiles(_cpu(True))["cpu"], parse_profiles(_cpu(1))["cpu"]
    change = changes("cpu", base, proposed)
    assert [c["key"] for c in change] == ["profiles.cpu.providers"]
    assert change[0]["base"][0]["options"] == {"arena": True} and change[0]["proposed"][0]["options"] == {"arena": 1}
    assert changes("cpu", None, base)[0]["base"] == MISSING and changes("cpu", base, base) == []

    path = tmp_path / "params.yaml"
    path.write_text("profiles: {}\n")
    monkeypatch.setattr(profile_source, "read_board_yaml", lambda _path: {"profiles": _cpu(1)})
    why = profile_source.board_reading_differs(path, parse_profiles(_cpu(True)))
    assert why is not None and why.startswith(f"{path}: profiles.cpu.providers: read as [")

    # leaves compare by type too, and an empty mapping is a setting of its own, not nothing
    assert changed_settings({"a": {"b": 1.0}}, {"a": {"b": 1}}, "p") == [("p.a.b", 1.0, 1)]
    assert changed_settings({"a": {}}, None, "p", MISSING) == [("p.a", {}, MISSING)]
