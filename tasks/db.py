"""Connecting to a warehouse and the SQL helpers every module that writes one shares (engines, the load
lock, upserts, JSON for its columns). It knows no stage: the stages and the migrations build on it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from tasks.settings import get_settings


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or written; the message never contains a password."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def without_nul(value: Any) -> Any:
    """The value with NUL characters removed from every string: PostgreSQL refuses them in text and JSONB."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(without_nul(value), default=_json_default, ensure_ascii=False)


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid warehouse URL>"


# Key of the PostgreSQL advisory lock a load transaction holds: loads into one warehouse take turns,
# so versions and late duplicates are decided against everything committed before them.
LOAD_LOCK_ID = 7_402_611_001


def _make_folder(folder: Path, url: str) -> None:
    """The SQLite file's folder, made if its own parent exists (`data/` of the default URL); a deeper
    missing tree is a typo more often than not: a clear error, not a tree of folders made silently."""
    if folder.is_dir():
        return
    if not folder.parent.is_dir():
        raise WarehouseError(f"warehouse {safe_url(url)}: folder {folder.parent} does not exist (create it first, "
                             "or check the URL)")
    try:
        folder.mkdir()
    except OSError as exc:
        raise WarehouseError(f"warehouse {safe_url(url)}: cannot make folder {folder}: {exc}") from None


def make_engine(url: str, *, immediate: bool = False, statement_timeout: float | None = None) -> Engine:
    """An engine for the warehouse URL, without touching its schema.

    Pool size, connect and statement timeouts come from settings. SQLite gets WAL and a busy timeout,
    and its transactions are begun by SQLAlchemy (the pysqlite recipe), `BEGIN IMMEDIATE` when
    `immediate` (every transaction) or on connections with the `sqlite_immediate` execution option.
    """
    settings = get_settings()
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise WarehouseError(f"invalid warehouse URL {safe_url(url)}: {type(exc).__name__}") from None
    if statement_timeout is None:
        statement_timeout = settings.warehouse_statement_timeout
    kwargs: dict[str, Any] = {"json_serializer": dumps, "pool_pre_ping": True,
                              "pool_size": settings.warehouse_pool_size}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            _make_folder(Path(database).parent, url)
        else:
            kwargs.pop("pool_size")  # in-memory databases use a single-connection pool
        kwargs["connect_args"] = {"timeout": settings.warehouse_busy_timeout}
    elif backend == "postgresql":
        options = f"-c statement_timeout={int(statement_timeout * 1000)}" if statement_timeout else ""
        kwargs["connect_args"] = {"connect_timeout": max(1, int(settings.warehouse_connect_timeout)),
                                  "application_name": "newsflow", **({"options": options} if options else {})}
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:
        raise WarehouseError(f"cannot use warehouse {safe_url(url)}: {type(exc).__name__}: "
                             f"{(str(exc).splitlines() or [''])[0]}") from None
    if backend == "sqlite":
        busy_ms = int(settings.warehouse_busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            connection.isolation_level = None  # SQLAlchemy begins transactions (see _sqlite_begin)
            cursor = connection.cursor()
            # busy_timeout makes a second writer wait; WAL lets readers work while a run writes.
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            _use_wal(cursor, settings.warehouse_busy_timeout)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # IMMEDIATE takes the write lock up front: a writer that read first could otherwise fail
            # with SQLITE_BUSY instead of waiting when another process committed in between.
            take_lock = immediate or connection.get_execution_options().get("sqlite_immediate", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if take_lock else "BEGIN")

    return engine


def _use_wal(cursor: Any, patience: float) -> None:
    """Put the database in WAL mode (it stays so, in the file). Switching needs a moment alone with the
    file, and SQLite answers "database is locked" at once, without its busy handler, when another
    process opens or switches the same new file then: so switch only if needed, and retry."""
    deadline = time.monotonic() + patience
    pause = 0.01
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the warehouse's load lock (PostgreSQL advisory lock, SQLite write lock)."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOAD_LOCK_ID})
            yield conn


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update_columns: Sequence[str] = ()) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE/NOTHING on SQLite and PostgreSQL, keys unique per statement."""
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        unique[tuple(row[k] for k in keys)] = row
    if not unique:
        return
    unique = dict(sorted(unique.items()))
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    if update_columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: statement.excluded[c] for c in update_columns})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(statement, list(unique.values()))
