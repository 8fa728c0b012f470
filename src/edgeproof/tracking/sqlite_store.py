"""The embedded MLflow store (``mlflow.db``): made all at once, and a half-built one recognised.

MLflow builds an SQLite store's schema with non-transactional DDL: each migration step commits on
its own, so a Ctrl-C or a kill during the store's creation (several seconds, inside a repo's first
gate run) or during an upgrade after an MLflow version bump leaves tables that its
``alembic_version`` row does not record, and every later open fails on them ("table ... already
exists", "duplicate column name"). Here a new store is built in a temp file next to ``mlflow.db``
and linked into place only once complete. An existing store whose schema is not complete is tried
on a copy (the original is only read): one that migrates is left to MLflow to upgrade; one that
does not is moved aside (``mlflow.db.broken-<time>``, never deleted) and made again when it holds
no runs, experiments or registered models, and refused with a message naming it otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edgeproof.io import exclusive_lock, fsync_dir, fsync_file, publish_mode

log = logging.getLogger(__name__)

RECORD_TABLES = ("runs", "registered_models", "experiments")
"""What a store holds that would be lost with it; the ``Default`` experiment MLflow makes (id 0,
no runs) does not count."""


class BrokenStoreError(RuntimeError):
    """The store's schema was left half-built and it holds records: edgeproof leaves it alone."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:`` tracking URI, or ``None`` (a server, ``:memory:``)."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def ensure_store(uri: str) -> None:
    """Make sure an ``sqlite:`` store at ``uri`` can be opened by MLflow without being half-built.

    No file: build one in a temp file and link it into place. A schema that is not complete and
    does not migrate (its creation or an upgrade was interrupted): moved aside and built again
    when it holds no records, else :class:`BrokenStoreError`. Other URIs: nothing to do.
    """
    path = sqlite_path(uri)
    if path is None or _complete(path):
        return
    with exclusive_lock(_lock_file(path)):  # one builder per store; re-checked under the lock
        _remove_stale_temps(path)
        if not path.exists():
            _create(path)
        elif not _complete(path):
            _settle_incomplete(path)


def _lock_file(path: Path) -> Path:
    """A lock outside the repo (no file beside ``mlflow.db``), one per store path."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"edgeproof-mlflow-store-{key}.lock"


def _read_only(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))


def _schema(path: Path) -> tuple[set[str], str | None]:
    """The store's tables and its recorded schema revision (read only)."""
    with _read_only(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "alembic_version" in tables:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            version = row[0] if row else None
    return tables, version


def _complete(path: Path) -> bool:
    """Whether the store exists at this MLflow's schema head with every table it expects (MLflow's
    own two checks when it opens a store)."""
    if not path.exists():
        return False
    from mlflow.store.db.utils import Base, _get_latest_schema_revision

    tables, version = _schema(path)
    return version == _get_latest_schema_revision() and set(Base.metadata.tables) <= tables


def _record_counts(path: Path) -> dict[str, int]:
    """How many runs, registered models and experiments (``Default`` aside) the store holds."""
    tables, _ = _schema(path)
    counts = {}
    with _read_only(path) as db:
        for table in RECORD_TABLES:
            where = " WHERE experiment_id != 0" if table == "experiments" else ""
            counts[table] = db.execute(f"SELECT COUNT(*) FROM {table}{where}").fetchone()[0] if table in tables else 0
    return counts


def _initialize(path: Path) -> None:
    """MLflow's own creation/upgrade of the schema of the SQLite file ``path``."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """A temp file next to ``path`` (``.mlflow.db.<random>.tmp``), removed afterwards."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}-journal").unlink(missing_ok=True)


def _remove_stale_temps(path: Path) -> None:
    """Temp stores of builders that were killed (the caller holds the lock: no builder is alive)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp*"):
        stale.unlink(missing_ok=True)


def _create(path: Path) -> None:
    """Build the schema in a temp file, then link it in as ``path``: a kill leaves no ``mlflow.db``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temp_beside(path) as tmp:
        _initialize(tmp)
        publish_mode(tmp)
        fsync_file(tmp)
        try:
            os.link(tmp, path)  # never over a store that appeared meanwhile (an `mlflow ui`, say)
        except FileExistsError:
            return
        fsync_dir(path.parent)
    log.info("created the MLflow store %s", path)


def _migration_error(path: Path) -> str | None:
    """Why MLflow cannot bring a copy of the store to its schema, or ``None`` when it can."""
    from edgeproof.tracking.redact import describe

    with _temp_beside(path) as copy:
        with _read_only(path) as src, contextlib.closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        try:
            _initialize(copy)
        except Exception as exc:
            return describe(exc)
    return None


def _settle_incomplete(path: Path) -> None:
    """An older store that migrates is left to MLflow; a half-built one is moved aside when empty."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    _, version = _schema(path)
    known = {rev.revision for rev in ScriptDirectory.from_config(_get_alembic_config("")).walk_revisions()}
    if version is not None and version not in known:
        return  # a newer MLflow made it: MLflow's own error says so
    error = _migration_error(path)
    if error is None:
        log.info("upgrading the schema of the MLflow store %s (revision %s)", path, version)
        return
    counts = _record_counts(path)
    if any(counts.values()):
        held = ", ".join(f"{n} {table}" for table, n in counts.items())
        raise BrokenStoreError(
            f"{path}: its MLflow schema was left half-built (revision {version}; an upgrade was interrupted: "
            f"{error}) and it holds {held}, so edgeproof leaves it as it is. Restore it from a backup, or move it "
            "aside and rebuild the store from the repo's files (docs/experiments.md, 'Rebuilding a lost store'); "
            "records waiting in the outbox stay there until a store takes them"
        )
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
    while aside.exists():  # a rename would replace an earlier broken store moved aside this second
        aside = aside.with_name(aside.name + "-1")
    path.rename(aside)
    log.warning(
        "%s: its MLflow schema was left half-built (revision %s; its creation was interrupted: %s) and it holds no "
        "runs, experiments or registered models; moved it to %s and creating a new store",
        path,
        version,
        error,
        aside,
    )
    _create(path)
