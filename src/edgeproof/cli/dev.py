"""Developer tools: ``params`` (validate params.yaml), ``exps`` (the experiment table in 120 columns),
``perf`` (the side-by-side speed comparison
against ultralytics, train extra) and ``reliability`` (bad inputs and injected faults, from a checkout)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edgeproof.cli.common import emit
from edgeproof.config import ParamsError, load_params


def _cmd_params(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    emit(params.model_dump() if args.show else {"ok": True, "file": str(args.params)})
    return 0


def checkout_tools(start: Path) -> Path:
    """The ``tools/`` folder of the edgeproof checkout at or above ``start`` (developer commands live there)."""
    for folder in (start, *start.parents):
        if (folder / "tools" / "reliability" / "__main__.py").is_file() and (folder / "dvc.yaml").is_file():
            return folder / "tools"
    raise FileNotFoundError(
        f"edgeproof reliability is a developer tool: run it inside an edgeproof checkout "
        f"(no tools/reliability/ in {start} or above)"
    )


def _cmd_reliability(args: argparse.Namespace) -> int:
    # A separate process on the checkout's tools/: the installed package never imports its test tooling.
    import os
    import subprocess

    tools = checkout_tools(Path.cwd().resolve())
    path = os.pathsep.join([str(tools), str(tools.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "reliability", *args.unknown]
    return subprocess.run(cmd, env={**os.environ, "PYTHONPATH": path}, check=False).returncode


S = TypeVar("S", bound=BaseModel)


def with_flags(section: S, flags: Mapping[str, tuple[str, Any]]) -> S:
    """``section`` with command-line values (``field: (flag, value)``) validated as params.yaml's own
    (``model_copy(update=...)`` validates nothing: ``--images -1`` ran); an error names the flag."""
    try:
        return type(section).model_validate({**section.model_dump(), **{k: v for k, (_, v) in flags.items()}})
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = flags[str(err["loc"][0])][0] if err["loc"] and str(err["loc"][0]) in flags else err["loc"]
        raise ParamsError(f"{flag}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})") from None


def _cmd_perf(args: argparse.Namespace) -> int:
    from edgeproof.io import write_json, write_text
    from edgeproof.paths import state_dir
    from edgeproof.perf.report import render
    from edgeproof.perf.run import PerfInputs, run_perf
    from edgeproof.training.parity_judge import fp16_judgeable

    params = load_params(args.params)
    flags = {"e2e_images": ("--images", args.images), **({"runs": ("--frames", args.frames)} if args.frames else {})}
    bench = with_flags(params.benchmark, flags)
    # interleaved rounds: the same concept, and so the same bounds, as release.bench_rounds
    rounds = with_flags(params.release, {"bench_rounds": ("--rounds", args.rounds)}).bench_rounds
    inputs = PerfInputs(args.weights, args.optimized, args.data, args.release, rounds, fp16_judgeable())
    doc = run_perf(inputs, params.evaluate, bench, params.deploy, state_dir())
    write_json(args.out / "perf.json", doc)
    write_text(args.out / "perf.md", render(doc))
    emit(doc["details"]["ratios"])
    return 0


def _cmd_exps(args: argparse.Namespace) -> int:
    from edgeproof.exptable import show

    sys.stdout.write("\n".join(show(Path.cwd(), args.params, args.width, args.num)) + "\n")
    return 0


def add_commands(sub: Any) -> None:
    """Register the developer tools' subcommands."""
    _add_params_command(sub)
    _add_perf_command(sub)
    _add_reliability_command(sub)


def _add_params_command(sub: Any) -> None:
    """``params``: validate params.yaml."""
    s = sub.add_parser("params", help="validate params.yaml (and --show the effective values)")
    s.add_argument("--show", action="store_true")
    s.set_defaults(func=_cmd_params)
    s = sub.add_parser("exps", help="dvc exp show in 120 columns: headline metrics, then the params that differ")
    s.add_argument("--width", type=int, default=120, help="table width in characters (default 120)")
    s.add_argument("--num", type=int, default=1, help="commits back from HEAD, as dvc exp show -n")
    s.set_defaults(func=_cmd_exps)


def _add_perf_command(sub: Any) -> None:
    """``perf``: the side-by-side speed comparison against ultralytics."""
    s = sub.add_parser(
        "perf", help="side-by-side speed: ultralytics predict vs edgeproof per variant (needs train extra)"
    )
    s.add_argument("--weights", type=Path, default=Path("models/best.pt"))
    s.add_argument("--optimized", type=Path, default=Path("models/optimized"), help="folder of <variant>.onnx")
    s.add_argument("--data", type=Path, default=Path("data/prepared"))
    s.add_argument("--release", type=Path, default=Path("reports/release.json"))
    s.add_argument("--out", type=Path, default=Path("reports"), help="writes perf.json and perf.md here")
    s.add_argument("--images", type=int, default=50, help="val images cycled by every entry")
    s.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved rounds; each entry keeps its median (a round-by-round verdict needs at least 4)",
    )
    s.add_argument("--frames", type=int, default=0, help="timed frames per entry per round (0: benchmark.runs)")
    s.set_defaults(func=_cmd_perf)


def _add_reliability_command(sub: Any) -> None:
    """``reliability``: bad inputs and injected faults against every entry point (a checkout's developer tool)."""
    s = sub.add_parser(
        "reliability",
        add_help=False,  # --help goes to the tool, which owns the arguments
        help="developer tool, from a checkout: feed bad inputs to every entry point, inject faults; write a report",
    )
    s.set_defaults(func=_cmd_reliability, forwards_unknown=True)  # every argument goes to the tool
