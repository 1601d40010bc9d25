"""Stage batches as pandas frames for the quality checks: one row per record, with a `row_id`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, select

from tasks import schema
from tasks.records import Article, Document

_MARKUP = re.compile(r"<(script|style|iframe|/?[a-z][a-z0-9]*\s[^>]*>|/?(p|div|span|br|a)>)", re.IGNORECASE)


def documents_frame(documents: Sequence[Document]) -> pd.DataFrame:
    return pd.DataFrame({
        "row_id": range(len(documents)),
        "source": [d.source for d in documents],
        "url": [d.url for d in documents],
        "content_type": [d.content_type for d in documents],
        "body_chars": [len(d.html or d.text or "") for d in documents],
        "fetched_at": [d.fetched_at for d in documents],
    })


def articles_frame(articles: Sequence[Article], now: datetime | None = None) -> pd.DataFrame:
    now = now or datetime.now(UTC)
    return pd.DataFrame({
        "row_id": range(len(articles)),
        "source": [a.source for a in articles],
        "url": [a.url for a in articles],
        "canonical_url": [a.canonical_url for a in articles],
        "title": [a.title for a in articles],
        "title_chars": [len(a.title) if a.title else None for a in articles],
        "word_count": [a.word_count for a in articles],
        "has_markup": [bool(_MARKUP.search(a.text)) for a in articles],
        "language": [a.language for a in articles],
        # Days since publication: negative means a date in the future.
        "published_age_days": [(now - a.published_at).total_seconds() / 86400 if a.published_at else None
                               for a in articles],
        "authors": ["; ".join(a.authors) for a in articles],
        "content_hash": [a.content_hash for a in articles],
    })


def loaded_frame(engine: Engine, run_id: str) -> pd.DataFrame:
    """The articles this run wrote, read back from the warehouse."""
    a = schema.articles
    query = select(a.c.canonical_url, a.c.content_hash, a.c.word_count).where(a.c.last_run_id == run_id)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all(),
                             columns=["canonical_url", "content_hash", "word_count"])
    frame.insert(0, "row_id", range(len(frame)))
    return frame
