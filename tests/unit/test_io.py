"""Atomic outputs: a failed write never replaces or tears the previous file."""

from __future__ import annotations

import json

import pytest

from edgeproof.folders import atomic_dir
from edgeproof.io import atomic_path, read_json, sha256_file, write_json


def test_write_json_is_sorted_and_replaces(tmp_path):
    target = tmp_path / "sub" / "m.json"
    write_json(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    write_json(target, {"c": 3})
    assert read_json(target) == {"c": 3}
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]  # no temp files left behind


def test_failed_write_keeps_old_file(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"ok": True})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_nan_is_refused(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_atomic_dir_swaps_only_on_success(tmp_path):
    target = tmp_path / "prepared"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none\.json"):
        read_json(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        read_json(bad)


def test_read_json_refuses_a_key_given_twice_naming_the_file_and_key(tmp_path):
    """json.loads keeps the last one: fps_e2e 3.0 then 30.0 passed a 10-FPS gate."""
    bench = tmp_path / "bench.json"
    bench.write_text('{"fps_e2e": 3.0, "latency_ms": {"p95": 1}, "fps_e2e": 30.0}')
    with pytest.raises(ValueError, match=r"bench\.json: not valid JSON \(duplicate key\(s\) \['fps_e2e'\]\)"):
        read_json(bench)
    bench.write_text('{"a": {"p95": 1, "p95": 2}}')
    with pytest.raises(ValueError, match=r"duplicate key\(s\) \['p95'\]"):
        read_json(bench)
    bench.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match=r"bench\.json: not valid JSON"):
        read_json(bench)


def test_the_build_gate_and_the_device_share_one_duplicate_key_check(tmp_path):
    from types import SimpleNamespace

    from edgeproof.device.manifest import BundleError, read_json_file
    from edgeproof.release.gating import GateRun, run_gate

    (tmp_path / "eval.json").write_text("{}")
    (tmp_path / "bench.json").write_text('{"fps_e2e": 3.0, "fps_e2e": 30.0}')
    with pytest.raises(BundleError, match=r"bench\.json: not valid JSON \(duplicate key\(s\) \['fps_e2e'\]\)"):
        read_json_file(tmp_path / "bench.json")  # the device side's reader: the same check, the same words
    (tmp_path / "m.onnx").write_bytes(b"m")
    paths = {k: tmp_path / f"{k}.out" for k in ("params", "report_json", "report_md", "headline", "train_metrics")}
    run = GateRun(**paths, model=tmp_path / "m.onnx", eval=tmp_path / "eval.json", bench=tmp_path / "bench.json")
    with pytest.raises(ValueError, match=r"bench\.json: not valid JSON \(duplicate key\(s\) \['fps_e2e'\]\)"):
        run_gate(run, SimpleNamespace(profiles={}, release=SimpleNamespace(build_profile="cpu-ci")))
    assert not (tmp_path / "report_json.out").exists()


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 3_000_000)
    assert sha256_file(f) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {})
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
