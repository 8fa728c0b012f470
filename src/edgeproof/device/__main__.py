"""``python -m edgeproof.device``: the device side's command line (Python 3.8+, device dependencies only).

- ``measure --bundle release/bundle --profile NAME --out reports/device/NAME [--rules-params params.yaml]``:
  verify, match, measure. ``--rules-params``: the base branch's params file, whose profile sets what
  is measured and how (CI passes it; without it, the bundle's own ``profiles.json``).
  Exit 0 measured; 2 the bundle failed verification or is unusable; 4 the machine does not match the
  profile; 5 the profile's execution providers are not the ones that ran; 6 the measurement crashed
  (an unforeseen error, e.g. in ONNX Runtime: infrastructure, not a verdict on the model). A model
  whose input size disagrees with ``deploy.json`` is an unusable bundle (2, rule ``input_size``).
  Every exit writes ``measure.json`` with the status, the rule and the reason.
- ``verify --bundle DIR``: check every file of a bundle against its manifest.
- ``preflight --bundle DIR --profile NAME [--rules-params FILE] [--refusal-out FILE]``: is this board
  ready (exit 0) or not (exit 1, reasons printed)? The bundle is verified first, before ONNX Runtime
  opens its model. With ``--refusal-out DIR/measure.json`` (ci/jetson/run-device.sh) a refusal is
  written there as ``measure`` writes one, DIR cleared of an older run's files first (preflight.json
  included: print the report elsewhere), and the exit is measure's: 2 for a bundle that fails
  verification (rule ``bundle_verified``), 6 for a board that is not ready (rule ``preflight``).
- ``facts [--bundle DIR]``: this machine as the device side reads it (and which bundle profiles match).
  With ``--profile NAME --rules-params FILE`` (or ``--bundle DIR``: its ``profiles.json``; neither: exit 2):
  that profile's match only, exit 4 when this machine does not match it (ci/jetson/prepare-runner.sh: a
  board the profile never matches, e.g. JetPack 6.0 for the Orin's L4T 36.4.3+, stops at set-up, not at
  every pull request's measurement).
- ``power-mode (--bundle DIR --profile NAME [--rules-params FILE] | --mode NAME)``: the ``nvpmodel -m``
  id of the profile's (or the named) power mode on this board (printed; exit 0), or exit 2 with the
  reason (unknown board or mode, or the profile requires none). For the runner set-up: ``sudo nvpmodel -m "$(...)"``.
  With ``--name`` (and ``--profile``): the profile's power mode name instead, an empty line when it
  requires none (exit 0); exit 2 when the profile cannot be read. ci/jetson/prepare-runner.sh reads the
  profile so, with the strict reader ``measure`` and ``preflight`` use, never a YAML reader of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from edgeproof.device.gated import Refused
from edgeproof.device.manifest import BundleError, read_json_file, verify_bundle
from edgeproof.device.measure import EXIT_MACHINE, clear_results, default_cache_root, manifest_digest, run_measure
from edgeproof.device.profile_source import load_profile
from edgeproof.device.sysinfo import SysRoot, machine_facts, power_mode_id
from edgeproof.io import write_json
from edgeproof.profiles import match_machine, mismatches, parse_profiles


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m edgeproof.device", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sysroot",
        type=Path,
        default=None,
        help="read the machine under this folder (recorded board; default $EDGEPROOF_SYSROOT or /)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure the bundle's model for a profile on this machine")
    m.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    m.add_argument("--profile", required=True)
    m.add_argument("--out", type=Path, default=None, help="results folder (default reports/device/PROFILE)")
    m.add_argument(
        "--engine-cache",
        type=Path,
        default=None,
        help="TensorRT engine cache root (default $EDGEPROOF_ENGINE_CACHE or ~/.cache/edgeproof/engines)",
    )
    v = sub.add_parser("verify", help="verify a bundle against its manifest")
    v.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    r = sub.add_parser("preflight", help="check this board is ready to measure a profile")
    r.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    r.add_argument("--profile", required=True)
    r.add_argument("--engine-cache", type=Path, default=None)
    r.add_argument("--refusal-out", type=Path, default=None, help="write a refusal here as measure.json (CI)")
    w = sub.add_parser("power-mode", help="print the nvpmodel id of the profile's power mode on this board")
    w.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    w.add_argument("--profile", default=None)
    w.add_argument("--mode", default=None, help="a power mode name (e.g. MAXN_SUPER) instead of a profile's")
    w.add_argument("--name", action="store_true", help="print the profile's power mode name (empty: none), not an id")
    for cmd in (m, r, w):
        cmd.add_argument(
            "--rules-params",
            type=Path,
            default=None,
            help="the base branch's params.yaml: its profiles set how to measure (default: the bundle's profiles.json)",
        )
    f = sub.add_parser("facts", help="print this machine's readings (and the bundle profiles it matches)")
    f.add_argument("--bundle", type=Path, default=None)
    f.add_argument(
        "--profile",
        default=None,
        help="check this machine against one profile (from --rules-params, else --bundle): exit 4 on no match",
    )
    f.add_argument("--rules-params", type=Path, default=None, help="the params.yaml --profile is read from")
    return p


def _facts(args: argparse.Namespace) -> int:
    facts = machine_facts(SysRoot(args.sysroot))
    if args.profile is not None:  # the runner set-up: a board the profile will never match stops there
        if args.bundle is None and args.rules_params is None:  # nowhere to read the profile from
            logging.getLogger("edgeproof.device").error(
                "facts --profile %s needs --rules-params FILE (a params.yaml) or --bundle DIR to read it from",
                args.profile,
            )
            return 2
        try:
            profile = load_profile(args.bundle, args.profile, args.rules_params)
        except (Refused, BundleError) as exc:
            logging.getLogger("edgeproof.device").error("%s", exc)
            return 2
        facts["profiles"] = {args.profile: match_machine(profile.match, facts)}
    elif args.bundle is not None:
        profiles = parse_profiles(read_json_file(args.bundle / "profiles.json"))
        facts["profiles"] = {n: match_machine(p.match, facts) for n, p in profiles.items()}
    sys.stdout.write(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    if args.profile is not None and not facts["profiles"][args.profile]["matched"]:
        bad = "; ".join(mismatches(facts["profiles"][args.profile]))
        logging.getLogger("edgeproof.device").error("this machine does not match profile %r: %s", args.profile, bad)
        return EXIT_MACHINE
    return 0


def _power_mode(args: argparse.Namespace) -> int:
    """Print the ``nvpmodel -m`` id for the profile's power mode on this board (for ci/jetson scripts);
    with ``--name``, the profile's power mode name (empty when it requires none)."""
    log = logging.getLogger("edgeproof.device")
    mode = args.mode
    if mode is None or args.name:
        if args.profile is None:
            log.error("power-mode needs --profile NAME (with --bundle), or --mode NAME without --name")
            return 2
        try:
            mode = load_profile(args.bundle, args.profile, args.rules_params).power_mode
        except (Refused, BundleError) as exc:
            log.error("%s", exc)
            return 2
        if args.name:  # the runner set-up: "none required" is an answer here, not an error
            sys.stdout.write("{}\n".format(mode or ""))
            return 0
        if mode is None:
            log.error("profile %s requires no power mode", args.profile)
            return 2
    model = (machine_facts(SysRoot(args.sysroot)).get("jetson") or {}).get("model")
    mode_id, why = power_mode_id(model, mode)
    if mode_id is None:
        log.error("%s", why)
        return 2
    sys.stdout.write(f"{mode_id}\n")
    return 0


def _preflight(args: argparse.Namespace) -> int:
    """Print the readiness report (always valid JSON, a crash included); with ``--refusal-out``, a refusal
    the device gate can report, and measure's exit code."""
    from edgeproof.device.preflight import preflight, refusal

    cache = args.engine_cache or default_cache_root()
    try:
        report = preflight(args.bundle, args.profile, SysRoot(args.sysroot), cache, args.rules_params)
    except Exception as exc:  # still a report, and a status the gate can read
        logging.getLogger("edgeproof.device").exception("preflight crashed")
        crashed = {"name": "preflight", "ok": False, "detail": f"crashed: {type(exc).__name__}: {exc}"}
        report = {"profile": args.profile, "ready": False, "checks": [crashed]}
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    if report["ready"]:
        return 0
    if args.refusal_out is None:
        return 1
    # which bundle was refused: the gate judges a refusal only as the bundle it judges (same_bundle)
    status = {**refusal(report), "bundle_manifest_sha256": manifest_digest(args.bundle)}
    clear_results(args.refusal_out.parent)
    write_json(args.refusal_out, status)
    return int(status["exit_code"])


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s", stream=sys.stderr)
    args = _parser().parse_args(argv)
    if args.command == "measure":
        out = args.out or Path("reports/device") / args.profile
        cache = args.engine_cache or default_cache_root()
        return run_measure(args.bundle, args.profile, out, args.sysroot, cache, args.rules_params)
    if args.command == "verify":
        try:
            manifest = verify_bundle(args.bundle)
        except BundleError as exc:
            logging.getLogger("edgeproof.device").error("%s", exc)
            return 2
        sys.stdout.write(json.dumps({"ok": True, "files": len(manifest["files"])}) + "\n")
        return 0
    if args.command == "preflight":
        return _preflight(args)
    if args.command == "power-mode":
        return _power_mode(args)
    return _facts(args)


if __name__ == "__main__":
    raise SystemExit(main())
