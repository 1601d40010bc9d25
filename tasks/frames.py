"""Stage batches as pandas frames for the quality checks.

`records` frames have one row per record with a `row_id` (its index in the batch); `sources` frames one
row per source with the shares that batch-level expectations bound; the dedupe stage's table holds the
articles kept and the copies dropped. Derived columns (`has_markup`, `published_age_days`, ...) let plain
expectations check them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime

import pandas as pd

from tasks.markup import leftover_markup
from tasks.records import Article, Document, Duplicate


def documents_frame(documents: Sequence[Document], via_http: bool = True,
                    local_sources: Collection[str] = ()) -> pd.DataFrame:
    """Fetched documents; `via_http` says whether they came over HTTP (and so must have a status),
    except those of `local_sources` (files, WARC archives)."""
    return pd.DataFrame({
        "row_id": range(len(documents)),
        "source": [d.source for d in documents],
        "url": [d.url for d in documents],
        "via_http": [via_http and d.source not in local_sources for d in documents],
        "status_code": pd.array([d.status_code for d in documents], dtype="Int64"),
        "content_type": [d.content_type for d in documents],
        "body_chars": [len(d.html or d.text or "") for d in documents],
        "fetched_at": [d.fetched_at for d in documents],
    })


def sources_frame(passed: Iterable[str], failed: Iterable[str], share_column: str) -> pd.DataFrame:
    """One row per source: its `pages` (passed plus failed, one source name per page) and the share failed."""
    ok, bad = Counter(passed), Counter(failed)
    names = sorted(set(ok) | set(bad))
    pages = [ok[n] + bad[n] for n in names]
    return pd.DataFrame({
        "source": names,
        "pages": pages,
        share_column: [bad[n] / total if total else 0.0 for n, total in zip(names, pages, strict=True)],
    })


def articles_frame(articles: Sequence[Article], now: datetime | None = None,
                   columns: Collection[str] | None = None) -> pd.DataFrame:
    """One row per article; only `columns` (and `row_id`) when given: a suite that reads two columns
    should not pay for the markup scan of every text."""
    now = now or datetime.now(UTC)
    builders = {
        "source": lambda: [a.source for a in articles],
        "url": lambda: [a.url for a in articles],
        "canonical_url": lambda: [a.canonical_url for a in articles],
        "title": lambda: [a.title for a in articles],
        "title_chars": lambda: pd.array([len(a.title) if a.title else None for a in articles], dtype="Int64"),
        "word_count": lambda: [a.word_count for a in articles],
        "undecodable_share": lambda: [a.undecodable_share for a in articles],
        # False, or the leftover markup found and why (tags still doing a tag's work, not '<' in prose): the
        # suite's check passes False only, and a quarantined row's reason shows what was found.
        "has_markup": lambda: [leftover_markup(a.text) or False for a in articles],
        "language": lambda: [a.language for a in articles],
        "published_at": lambda: [a.published_at for a in articles],
        # Days since publication: negative means a date in the future.
        "published_age_days": lambda: [(now - a.published_at).total_seconds() / 86400 if a.published_at else None
                                       for a in articles],
        "authors": lambda: ["; ".join(a.authors) for a in articles],
        "content_hash": lambda: [a.content_hash for a in articles],
    }
    wanted = builders if columns is None else [c for c in builders if c in columns]
    return pd.DataFrame({"row_id": range(len(articles)), **{c: builders[c]() for c in wanted}})


def deduplicated_frame(kept: Sequence[Article], duplicates: Sequence[Duplicate], stored_or_kept: Iterable[str],
                       columns: Collection[str] | None = None) -> pd.DataFrame:
    """The dedupe stage's output as one table, so that it is checked in one validation: the articles kept
    (row ids 0..len(kept)-1) then the copies dropped, each saying whether the article it points at exists
    (in the warehouse, or kept now). A copy has no canonical URL or content hash of its own here (null:
    column checks skip it) and a kept article no `points_at_article`."""
    stored_or_kept = set(stored_or_kept)
    copies = pd.DataFrame({
        "row_id": range(len(kept), len(kept) + len(duplicates)),
        "source": [d.source for d in duplicates],
        "url": [d.url for d in duplicates],
        "kept_url": [d.kept_url for d in duplicates],
        "kind": [d.kind for d in duplicates],
        "points_at_article": pd.array([bool(d.kept_article_id) or d.kept_url in stored_or_kept
                                       for d in duplicates], dtype="boolean"),
    })
    frame = pd.concat([articles_frame(kept, columns=columns), copies], ignore_index=True)
    frame["points_at_article"] = frame["points_at_article"].astype("boolean")
    return frame if columns is None else frame[[c for c in frame.columns if c in columns or c == "row_id"]]
