"""The warehouse schema is created and upgraded by the packaged Alembic migrations, in place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from warehouse_sql import query

from flows.cli import main
from tasks import migrate, schema
from tasks.search import search
from tasks.warehouse import make_engine, open_warehouse

ADD_COLUMN_REVISION = '''
import sqlalchemy as sa
from alembic import op

revision = "9001_test"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    # On SQLite, copy the table: the riskiest path for the rows referencing it.
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("articles", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(sa.Column("reading_minutes", sa.Integer(), nullable=False, server_default="3"))


def downgrade():
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("reading_minutes")
'''




def insert_article(conn, title: str) -> None:
    """A row with the first release's columns only (plain SQL)."""
    conn.execute(text(
        "INSERT INTO articles (url, canonical_url, source, title, authors, text, word_count, content_hash, "
        "first_seen_at, last_seen_at) VALUES (:url, :canonical, 'wire', :title, '[]', :text, 2, :hash, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
        {"url": f"https://a.example/{title}", "canonical": f"https://a.example/{title}", "title": title,
         "text": f"{title.lower()} text", "hash": title})


def insert_baseline_article(url: str) -> None:
    """A row as a warehouse of the first release held it, and a duplicate of it."""
    engine = make_engine(url)
    with engine.begin() as conn:
        insert_article(conn, "Old")
        conn.execute(text(
            "INSERT INTO duplicates (url, article_id, kind, similarity, run_id, detected_at) "
            "SELECT 'https://b.example/copy', id, 'exact', 1.0, 'r1', CURRENT_TIMESTAMP FROM articles"))
    engine.dispose()


def test_upgrade_from_empty_builds_exactly_the_schema(warehouse_url):
    assert migrate.current(warehouse_url) == ()
    assert migrate.upgrade(warehouse_url) == migrate.heads()
    assert len(migrate.heads()) == 1, "every schema change chains after the single head"
    engine = make_engine(warehouse_url)
    with engine.connect() as conn:
        # The migrations and tasks/schema.py describe the same tables, columns, types and indexes.
        assert compare_metadata(MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": migrate.include_object}),
                                schema.metadata) == []
    engine.dispose()
    assert migrate.upgrade(warehouse_url) == migrate.heads()  # a second upgrade is a no-op


def test_previous_version_upgrades_in_place_with_an_added_column(warehouse_url, tmp_path):
    migrate.upgrade(warehouse_url, migrate.BASELINE_REVISION)
    insert_baseline_article(warehouse_url)
    (previous_head,) = migrate.heads()
    migrate.upgrade(warehouse_url)  # the packaged revisions after the first release
    extra = tmp_path / "versions"
    extra.mkdir()
    (extra / "9001_test_add_column.py").write_text(ADD_COLUMN_REVISION.format(down=previous_head))

    assert migrate.upgrade(warehouse_url, extra_version_locations=(str(extra),)) == ("9001_test",)

    assert query(warehouse_url, "SELECT canonical_url, title, text, reading_minutes FROM articles") == [
        ("https://a.example/Old", "Old", "old text", 3)]
    assert query(warehouse_url, "SELECT d.url, a.title FROM duplicates d JOIN articles a ON a.id = d.article_id") \
        == [("https://b.example/copy", "Old")]
    # The views and full-text search still work on the rebuilt table, for old rows and new ones.
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        insert_article(conn, "Fresh")
    assert query(warehouse_url, "SELECT title, duplicate_count FROM latest_articles ORDER BY id") == [
        ("Old", 1), ("Fresh", 0)]
    assert [hit.title for hit in search(engine, "old")] == ["Old"]
    assert [hit.title for hit in search(engine, "fresh")] == ["Fresh"]
    engine.dispose()


def test_the_previous_revision_upgrades_in_place(warehouse_url):
    """A warehouse at the revision before the head (the previous version) keeps every row, and loads after."""
    from alembic.script import ScriptDirectory
    from test_load import article, load

    (head,) = migrate.heads()
    previous = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head).down_revision
    migrate.upgrade(warehouse_url, previous)
    insert_baseline_article(warehouse_url)
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO article_band_keys (band_key, article_id) "
                          "SELECT '00000000000000aa', id FROM articles"))
    engine.dispose()

    assert migrate.upgrade(warehouse_url) == (head,)

    assert query(warehouse_url, "SELECT title, duplicate_count FROM latest_articles") == [("Old", 1)]
    assert query(warehouse_url, "SELECT k.band_key, a.title FROM article_band_keys k "
                                "JOIN articles a ON a.id = k.article_id") == [("00000000000000aa", "Old")]
    load(warehouse_url, [article(1), article(2, url="https://a.example/Old")], run_id="after-upgrade")
    assert query(warehouse_url, "SELECT canonical_url, version FROM articles ORDER BY id") == [
        ("https://a.example/Old", 2), ("https://news.example/1", 1)]
    assert query(warehouse_url, "SELECT text FROM article_versions") == [("old text",)]
    engine = make_engine(warehouse_url)
    assert [hit.title for hit in search(engine, "word2x5")] == ["Title 2"]
    engine.dispose()


def test_warehouse_created_before_migrations_is_adopted(warehouse_url):
    # The first release created its tables with create_all, without alembic_version.
    migrate.upgrade(warehouse_url, migrate.BASELINE_REVISION)
    insert_baseline_article(warehouse_url)
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()

    open_warehouse(warehouse_url).dispose()  # what a flow run does before its first load

    assert migrate.current(warehouse_url) == migrate.heads()
    assert query(warehouse_url, "SELECT title FROM articles") == [("Old",)]


def test_two_processes_upgrading_at_once_both_succeed(warehouse_url):
    command = [sys.executable, "-m", "flows.cli", "db", "upgrade", "--warehouse", warehouse_url]
    root = Path(__file__).resolve().parents[1]
    runs = [subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    assert migrate.current(warehouse_url) == migrate.heads()
    assert set(schema.metadata.tables) <= set(inspect(make_engine(warehouse_url)).get_table_names())


def test_db_commands(warehouse_url, capsys):
    assert main(["db", "current", "--warehouse", warehouse_url]) == 0
    assert "(not migrated)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--warehouse", warehouse_url]) == 0
    assert main(["db", "current", "--warehouse", warehouse_url]) == 0
    assert f"{migrate.heads()[0]} (up to date)" in capsys.readouterr().out


def test_unreachable_warehouse_is_a_clear_error_without_password(capsys):
    url = "postgresql+psycopg://newsflow:s3cret@127.0.0.1:9/news"
    assert main(["db", "upgrade", "--warehouse", url]) == 4
    err = capsys.readouterr().err
    assert "unavailable" in err and "s3cret" not in err and "***" in err


def test_the_loaded_checks_read_a_run_through_an_index(sqlite_url):
    """The end-of-run warehouse checks look up the run's own rows; a full scan would grow with the warehouse."""
    from tasks.validate import warehouse_queries

    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            for name, sql in warehouse_queries("run-1").items():
                plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
                assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (name, plan)
                assert not plan.startswith("SCAN"), (name, plan)
    finally:
        engine.dispose()


def test_a_missing_postgresql_database_names_the_fix():
    """The driver's error says the database does not exist; the message adds how to create it."""
    from tasks.migrate import how_to_fix

    error = Exception('connection failed: connection to server at "db", port 5433 failed: '
                      'FATAL:  database "news" does not exist')
    hint = how_to_fix(error, "postgresql+psycopg://etl:pw@db:5433/news")
    assert "createdb -h db -p 5433 -U etl news" in hint and 'CREATE DATABASE "news";' in hint
    assert "pw" not in hint
    assert how_to_fix(Exception("connection refused"), "postgresql+psycopg://db/news") == ""


def test_a_missing_postgresql_database_fails_with_the_fix(postgres_url):
    from sqlalchemy.engine import make_url

    from tasks.migrate import current
    from tasks.warehouse import WarehouseError

    missing = make_url(postgres_url).set(database="newsflow_no_such_db").render_as_string(hide_password=False)
    with pytest.raises(WarehouseError, match=r"does not exist; create it first: `createdb .*newsflow_no_such_db`"):
        current(missing)
