"""Alembic environment: migrates the warehouse described by `tasks.schema.metadata`.

The connection comes from `tasks.migrate` (config.attributes["connection"]), or else from the
`sqlalchemy.url` option / NEWSFLOW_WAREHOUSE_URL when the `alembic` command is run by hand.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import inspect, text

from tasks import schema
from tasks.migrate import BASELINE_REVISION, MIGRATION_LOCK_ID, include_object, migration_engine
from tasks.search import ensure_sqlite_fts_triggers
from tasks.settings import get_settings

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
        include_object=include_object,
        # One transaction for the whole upgrade; on SQLite tasks.migrate makes DDL transactional.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two runs starting at once on one warehouse: the second waits, then finds it upgraded.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        _adopt_unversioned(connection)
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            ensure_sqlite_fts_triggers(connection)


def _adopt_unversioned(connection) -> None:
    """A warehouse created before migrations existed has the baseline schema: stamp it, keep its rows."""
    inspector = inspect(connection)
    if inspector.has_table("articles") and not inspector.has_table("alembic_version"):
        context.get_context().stamp(context.script, BASELINE_REVISION)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().warehouse_url
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run `newsflow db upgrade`")
run_migrations_online()
