"""The outbox: records waiting for MLflow, one folder each, removed only once MLflow has them."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproof.tracking.mlflow_sink import connect, send, unreachable
from edgeproof.tracking.params import TrackParams
from edgeproof.tracking.record import RECORD_FILE, Destination
from edgeproof.tracking.redact import describe

log = logging.getLogger(__name__)


@dataclass
class FlushResult:
    """What one flush did: records sent (``record_id``, ``run_id``, ...) and records still waiting
    (``record_id``, ``error``)."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)


def waiting(outbox: Path) -> list[Path]:
    """Complete record folders in ``outbox``, oldest run first (half-written ``.<id>.tmp`` ones skipped)."""
    if not outbox.is_dir():
        return []
    folders = [p for p in outbox.iterdir() if not p.name.startswith(".") and (p / RECORD_FILE).is_file()]
    return sorted(folders, key=lambda p: (record_time_ms(p), p.name))


def record_time_ms(folder: Path) -> int:
    """When the record's run ended, by its own ``times.end_ms``: the folder's time is when it was
    written or copied, which says nothing of which run is newer. A record without it (or one that
    does not parse, sent to fail and report itself) goes by the folder's time."""
    try:
        end = (json.loads((folder / RECORD_FILE).read_text()).get("times") or {}).get("end_ms")
    except (OSError, ValueError, AttributeError):
        end = None
    return int(end) if isinstance(end, (int, float)) else int(folder.stat().st_mtime * 1000)


@contextlib.contextmanager
def locked(outbox: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``outbox`` (POSIX; a no-op elsewhere), so that concurrent flushes
    (e.g. experiments of ``dvc queue start -j 2``) never send the same record twice."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    outbox.parent.mkdir(parents=True, exist_ok=True)
    with (outbox.parent / f"{outbox.name}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def flush(outbox: Path, uri: str, root: Path, fallback: Destination, track: TrackParams | None = None) -> FlushResult:
    """Send every record waiting in ``outbox``, oldest first; a record leaves the outbox only after
    MLflow has it in full. A record that fails (whatever the exception) stays and is reported as
    pending; the others are still tried unless the tracking server stopped answering. ``track``: the
    sender's params, which decide the alias a record earns (never the record's own say)."""
    result = FlushResult()
    with locked(outbox):
        folders = waiting(outbox)
        if not folders:
            return result
        try:
            client = connect(uri)
        except Exception as exc:  # e.g. a malformed URI or an MLflow too old for the database
            client, down = None, describe(exc)
        else:
            down = unreachable(client)
        for i, folder in enumerate(folders):
            if down:
                result.pending += [{"record_id": f.name, "error": down} for f in folders[i:]]
                break
            try:
                sent = send(client, folder, uri, root, fallback, track)
            except Exception as exc:
                error = describe(exc)
                log.warning("MLflow did not take record %s (%s); it stays in %s", folder.name, error, outbox)
                result.pending.append({"record_id": folder.name, "error": error})
                down = unreachable(client)
                continue
            shutil.rmtree(folder, ignore_errors=True)
            result.sent.append({"record_id": folder.name, **sent})
    return result
