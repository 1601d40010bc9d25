"""Reading the warehouse back in tests, as an analyst would: plain SQL."""

from __future__ import annotations

from sqlalchemy import text

from tasks.warehouse import make_engine


def query(url: str, sql: str) -> list[tuple]:
    """All rows of a SQL query, as tuples, on a short-lived engine (no pooled connection left behind)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()
