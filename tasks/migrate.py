"""Creating and upgrading the warehouse schema with the Alembic migrations in `tasks/migrations/`.

`upgrade(url)` runs before a flow's first load and behind `newsflow db upgrade`; it is cheap when the
warehouse is already at the head revision. Concurrent upgrades are serialised: an advisory lock on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite (whose DDL is then transactional too).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from tasks.db import WarehouseError, make_engine, safe_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock held while migrating (any constant unique to this application).
MIGRATION_LOCK_ID = 7_402_611_007
# Revision matching the schema that warehouses created before migrations existed have (create_all).
BASELINE_REVISION = "0001"


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """What autogenerate compares: not the full-text search objects, which live only in the migrations
    (an FTS5 table on SQLite, an expression index on PostgreSQL)."""
    return not (name or "").startswith(("articles_fts", "ix_articles_fts"))


def alembic_config(url: str | None = None, extra_version_locations: tuple[str, ...] = ()) -> Config:
    """Alembic configuration for the packaged migrations (plus extra revision folders, for tests)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    locations = [str(MIGRATIONS_DIR / "versions"), *extra_version_locations]
    config.set_main_option("version_locations", os.pathsep.join(locations))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migration_engine(url: str) -> Engine:
    """An engine for migrating: SQLite transactions are `BEGIN IMMEDIATE` (DDL included), no statement timeout."""
    engine = make_engine(url, immediate=True, statement_timeout=0)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection, _record) -> None:
            # Batch migrations rebuild a table by copy, drop and rename: with foreign keys on, the
            # drop would cascade to the rows referencing it.
            dbapi_connection.execute("PRAGMA foreign_keys=OFF")
            # ... and the rename back would fail on the views reading that table (the table's own
            # triggers go with it: env.py puts the full-text search ones back).
            dbapi_connection.execute("PRAGMA legacy_alter_table=ON")

    return engine


def heads(extra_version_locations: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(None, extra_version_locations)).get_heads())


def current(url: str) -> tuple[str, ...]:
    """The warehouse's revision(s); empty when it has never been migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    except WarehouseError:
        raise
    except Exception as exc:
        raise WarehouseError(f"warehouse {safe_url(url)} unavailable: {_first_line(exc, url)}") from None
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head", extra_version_locations: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Bring the warehouse to `revision` (default: the newest); returns the revision(s) it is at."""
    try:
        if revision == "head" and set(current(url)) == set(heads(extra_version_locations)):
            return heads(extra_version_locations)
        engine = migration_engine(url)
        try:
            with engine.connect() as conn:
                config = alembic_config(url, extra_version_locations)
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        finally:
            engine.dispose()
    except WarehouseError:
        raise
    except Exception as exc:
        raise WarehouseError(f"cannot migrate warehouse {safe_url(url)}: {_first_line(exc, url)}") from None
    return current(url)


def _first_line(exc: BaseException, url: str) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}{how_to_fix(exc, url)}"


_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')


def how_to_fix(exc: BaseException, url: str) -> str:
    """A hint for the errors a user fixes in one command: a PostgreSQL database that does not exist yet."""
    missing = _MISSING_DATABASE.search(str(exc))
    if not missing:
        return ""
    name = missing.group(1)
    parsed = make_url(url)
    options = [f"{flag} {shlex.quote(str(value))}"
               for flag, value in (("-h", parsed.host), ("-p", parsed.port), ("-U", parsed.username)) if value]
    quoted = '"' + name.replace('"', '""') + '"'
    return (f"; create it first: `createdb {' '.join([*options, shlex.quote(name)])}`"
            f" or, in psql, `CREATE DATABASE {quoted};`")
