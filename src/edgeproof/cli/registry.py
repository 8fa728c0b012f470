"""Registry administration: the MLflow outbox (``track replay``) and the model registry (``model show``,
``model rollback``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgeproof.cli.common import emit
from edgeproof.config import load_params


def _cmd_track_replay(args: argparse.Namespace) -> int:
    from edgeproof.paths import state_dir
    from edgeproof.tracking.pipeline import replay

    sent = replay(state_dir(), Path.cwd(), load_params(args.params).track)
    emit({"sent": sent})
    return 0


def _cmd_model(args: argparse.Namespace) -> int:
    from edgeproof.paths import repo_root
    from edgeproof.tracking import model_show, registry
    from edgeproof.tracking.mlflow_sink import connect, default_tracking_uri
    from edgeproof.tracking.redact import describe, install_log_filter

    install_log_filter()
    params = load_params(args.params)
    track = params.track
    alias = args.alias or track.champion_alias
    try:
        client = connect(default_tracking_uri(repo_root(Path.cwd())))
        build = params.release.build_profile  # the build gate's profile: any other verdict is a device's
        if args.action == "show":
            emit(model_show.show(client, track.model_name, alias, build))
        else:
            emit(registry.rollback(client, track.model_name, alias, args.to, args.force, build))
    except ValueError:
        raise
    except Exception as exc:  # MlflowException, connection errors: one line, credentials removed
        raise RuntimeError(f"{track.model_name}@{alias}: {describe(exc)}") from None
    return 0


def add_commands(sub: Any) -> None:
    """``track`` and ``model``: the MLflow outbox and the model registry."""
    s = sub.add_parser("track", help="MLflow tracking")
    s.add_argument("action", choices=["replay"], help="replay: send records waiting in the outbox")
    s.set_defaults(func=_cmd_track_replay)
    s = sub.add_parser("model", help="the MLflow registry: who holds an alias, and moving it back")
    s.add_argument("action", choices=["show", "rollback"], help="show: the alias holder and its gate record")
    s.add_argument("--alias", default=None, help="registry alias (default: track.champion_alias)")
    s.add_argument("--to", default=None, help="rollback: this version (default: the alias' previous holder)")
    s.add_argument(
        "--force",
        action="store_true",
        help="rollback: also to a version a device failed (held_back); with --to, also one that never held the "
        "alias (e.g. a candidate)",
    )
    s.set_defaults(func=_cmd_model)
