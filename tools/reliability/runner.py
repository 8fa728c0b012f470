"""Run reliability cases in throw-away repos and judge each outcome.

A bad input is *refused cleanly* when the entry point exits non-zero with a message naming the file
or key (or, for single files in a dataset, drops the file and names it in ``metrics/data.json``),
without a traceback, and every file that existed before the run is byte-identical after it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from tests.data.builders import tree_state

from reliability.cases import Call, Case

_TRACEBACK = "Traceback (most recent call last)"
PROJECT = Path(__file__).resolve().parents[2]  # the checkout holding stages/ (tools/reliability/..)


def _entry(call: Call) -> Any:
    if call.entry == "cli":
        from edgeproof.cli import main

        return main
    if call.entry == "device":
        from edgeproof.device.__main__ import main as device_main

        return device_main
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    return importlib.import_module(f"stages.{call.entry.split(':', 1)[1]}").main


def _in_process(call: Call, repo: Path) -> tuple[int | None, str]:
    out, cwd = io.StringIO(), Path.cwd()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        os.chdir(repo)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                return int(_entry(call)(call.argv) or 0), out.getvalue()
            except SystemExit as exc:  # argparse
                return int(exc.code or 0), out.getvalue()
            except Exception:
                return None, out.getvalue() + traceback.format_exc()
    finally:
        os.chdir(cwd)
        root.handlers[:] = saved


def _child(call: Call, repo: Path) -> tuple[int | None, str]:
    modules = {"cli": "edgeproof.cli", "device": "edgeproof.device"}
    module = modules.get(call.entry) or f"stages.{call.entry.split(':', 1)[1]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), str(PROJECT)])}
    proc = subprocess.run(
        [sys.executable, "-m", module, *call.argv], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    output = proc.stdout + proc.stderr
    return (None if _TRACEBACK in output else proc.returncode), output


_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")


def _line(text: str, needle: str) -> str:
    lines = text.strip().splitlines()
    found = next((line for line in lines if needle in line), lines[-1] if lines else "")
    return _STAMP.sub("", found.strip())[:300]


def judge(call: Call, code: int | None, output: str, repo: Path) -> tuple[str, str]:
    """``(outcome, detail)``: refused, unclear (refused without naming the file/key), accepted or crashed."""
    if code is None or _TRACEBACK in output:  # a traceback logged on the way out is a crash too
        return "crashed", _line(output, "Error") or "uncaught exception"
    if call.expect == "problem" and code == 0:
        report = repo / "metrics" / "data.json"
        text = report.read_text(encoding="utf-8") if report.is_file() else ""
        missing = [n for n in call.needles if n not in text]
        if missing:
            return "accepted", f"exit 0 and metrics/data.json does not name {missing}"
        return "refused", "dropped and reported: " + _line(text, call.needles[-1]).strip('",')
    if code == 0:
        return "accepted", "exit 0"
    missing = [n for n in call.needles if n not in output]
    if missing:
        return "unclear", f"exit {code} without naming {missing}: {_line(output, 'ERROR')}"
    if call.exit_code is not None and code != call.exit_code:
        return "unclear", f"exit {code}, not the documented {call.exit_code}: {_line(output, call.needles[0])}"
    if call.report is not None:
        name, key, value = call.report
        try:
            written = json.loads((repo / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError) as exc:
            return "unclear", f"exit {code} but {name} is not a written report ({type(exc).__name__})"
        if written != value:
            return "unclear", f"exit {code} but {name} says {key}={written!r}, not {value!r}"
    return "refused", f"exit {code}: {_line(output, call.needles[0])}"


def run_case(case: Case, workdir: Path) -> dict[str, Any]:
    """Build ``case`` under ``workdir/<name>/repo``, feed it to its entry point and judge the result."""
    home = workdir / case.name
    repo = home / "repo"
    repo.mkdir(parents=True)
    call = case.build(repo)
    before = tree_state(home)
    code, output = (_child if call.isolated else _in_process)(call, repo)
    after = tree_state(home)
    changed = sorted(path for path, state in before.items() if after.get(path) != state)
    outcome, detail = judge(call, code, output, repo)
    detail = detail.replace(f"{repo}{os.sep}", "")
    if changed:
        detail = f"{detail}; user files changed or lost: {changed[:5]}"
    return {"kind": "bad_input", "name": case.name, "outcome": outcome, "detail": f"{case.what} -> {detail}",
            "data_lost": len(changed)}  # fmt: skip
