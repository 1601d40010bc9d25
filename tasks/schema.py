"""The warehouse schema, defined once. Users query these tables: keep the names, add columns freely."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator):
    """Timezone-aware timestamps on both databases: stored in UTC, read back aware (UTC).

    PostgreSQL has `timestamptz`; SQLite has no time zones, so values are stored as naive UTC
    (naive input is taken as UTC) and given their zone back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UtcDateTime

articles = Table(
    "articles", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("canonical_url", Text, nullable=False, unique=True),
    Column("source", String(200), nullable=False, index=True),
    Column("title", Text),
    Column("authors", Json, nullable=False, default=list),
    Column("published_at", Timestamp, index=True),
    Column("language", String(16)),
    Column("text", Text, nullable=False),
    Column("word_count", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False, index=True),
    Column("description", Text),
    Column("site_name", Text),
    Column("modified_at", Timestamp),
    Column("image", Text),
    Column("tags", Json),
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
    Column("last_run_id", String(64)),
    # Number of the current text: 1 when first loaded, +1 each time a fetch brings a changed text.
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    # The story (event) the article is about, shared with other outlets' articles on it (tasks.stories).
    Column("story_id", Id, ForeignKey("stories.id"), index=True),
    # Of the page's characters, undecodable bytes (U+FFFD) before cleaning (migration 0014); over 1%: quarantined.
    Column("undecodable_share", Float, nullable=False, default=0.0, server_default="0"),
    # What the current text was cleaned from (migration 0015: `Document.input_hash`): fetched again the same,
    # the page is unchanged at the fetch stage and goes no further.
    Column("input_hash", String(64), index=True),
)

# Same-story links: one row per story, its articles point at it through `articles.story_id`.
stories = Table(
    "stories", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("title", Text),  # of its first article
    Column("centroid", Json, nullable=False),  # heaviest terms of its articles' summed vectors
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False, index=True),
    Column("article_count", Integer, nullable=False, default=0),
)

# Earlier texts of articles whose text changed (a correction, an update); the current one is in `articles`.
article_versions = Table(
    "article_versions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("word_count", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("seen_at", Timestamp, nullable=False),  # last time this text was fetched
    Column("replaced_at", Timestamp, nullable=False),
    Column("replaced_by_run_id", String(64)),
    UniqueConstraint("article_id", "version", name="uq_article_versions_article_version"),
)

# MinHash signature of each article, and its LSH band keys (indexed) for near-duplicate candidates.
article_signatures = Table(
    "article_signatures", metadata,
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("signature", LargeBinary, nullable=False),
)

# No foreign key (migration 0008): a referential check per key was a third of a load's time, and lookups
# join through `articles`, so a key left by a deleted article finds nothing.
article_band_keys = Table(
    "article_band_keys", metadata,
    Column("band_key", String(24), primary_key=True),
    Column("article_id", Id, primary_key=True, index=True),
)

duplicates = Table(
    "duplicates", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False, unique=True),
    Column("canonical_url", Text),
    Column("source", String(200)),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("similarity", Float, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("detected_at", Timestamp, nullable=False),
    Column("input_hash", String(64), index=True),  # what the copy was cleaned from, as `articles.input_hash`
)

fetches = Table(
    "fetches", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("source", String(200)),
    Column("url", Text, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("elapsed_ms", Integer, nullable=False, default=0),
    Column("content_type", Text),
    Column("fetched_at", Timestamp, nullable=False),
    Column("error_kind", String(32)),  # timeout, network, http_status, too_large, robots, private_network, ...
    Column("retries", Integer, nullable=False, default=0),
    Column("not_modified", Boolean, nullable=False, default=False),
    Column("content_hash", String(64)),  # the body in raw_blobs
)

# Conditional GET: the validators of the last good response of every feed, sitemap and page.
http_cache = Table(
    "http_cache", metadata,
    Column("url", Text, primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fetched_at", Timestamp, nullable=False),  # of the last 200: sitemap entries older are not new
)

# How far local files have been read (migration 0011), so that a source's per-run budget moves on instead of
# reading its first files again: a file is known by its path with its size and modification time; JSON Lines
# and WARC files are read in parts, from `position` (NULL: read to the end).
local_files = Table(
    "local_files", metadata,
    Column("path", Text, primary_key=True),  # file:// URI of the resolved path
    Column("fingerprint", String(64), nullable=False),  # "size:mtime_ns" when it was read
    Column("position", BigInteger),  # byte offset of the first item not read yet
    Column("items_read", BigInteger, nullable=False, default=0, server_default="0"),  # lines, records before `position`
    Column("read_at", Timestamp, nullable=False),
)

# Raw store: every fetched document's bytes, gzip-compressed, once per content hash ...
raw_blobs = Table(
    "raw_blobs", metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# ... and what each was: the `reprocess` flow rebuilds documents from these without fetching.
raw_documents = Table(
    "raw_documents", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("content_hash", String(64), ForeignKey("raw_blobs.content_hash"), nullable=False, index=True),
    Column("source", String(200), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # page (an article candidate), feed, sitemap
    Column("content_type", Text),
    Column("charset", String(64)),
    Column("status_code", Integer),
    Column("hints", Json),
    Column("first_fetched_at", Timestamp, nullable=False),
    Column("last_fetched_at", Timestamp, nullable=False, index=True),
    UniqueConstraint("url", "content_hash", name="uq_raw_documents_url_hash"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("stage", String(32), nullable=False),
    Column("source", String(200)),
    Column("url", Text),
    Column("reasons", Json, nullable=False),
    Column("payload", Json),
    Column("quarantined_at", Timestamp, nullable=False),
)

dq_results = Table(
    "dq_results", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("stage", String(32), nullable=False),
    Column("suite", String(100), nullable=False),
    Column("expectation", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("unexpected_count", Integer),
    Column("unexpected_percent", Float),
    Column("observed_value", Text),
    Column("checked_at", Timestamp, nullable=False),
)

STAGE_COUNT_COLUMNS = [f"{stage}_{side}" for stage in ("fetch", "clean", "dedupe", "validate", "load")
                       for side in ("in", "out")]

pipeline_runs = Table(
    "pipeline_runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("flow_run_id", String(64)),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("status", String(16), nullable=False),
    Column("message", Text),
    *[Column(name, Integer, nullable=False, default=0) for name in STAGE_COUNT_COLUMNS],
    Column("quarantined", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    # Items over the sources' per-run budgets, left for the next runs (migration 0011), and per source.
    Column("deferred", Integer, nullable=False, default=0, server_default="0"),
    Column("deferred_sources", Json),
    # Every stage of the pipeline, in order: [{"stage", "in", "out", "quarantined", "dropped"}] (migration 0012).
    Column("stage_counts", Json),
    # Where the run runs and its last sign of life (migration 0013): a run that died is marked `crashed`.
    Column("host", String(255)),
    Column("pid", Integer),
    Column("heartbeat_at", Timestamp),
)

# What each run wrote (migration 0010): the loaded checks read a run's rows here, because another run that
# touches the same article or duplicate rewrites its `last_run_id` / `run_id`.
run_writes = Table(
    "run_writes", metadata,
    Column("run_id", String(64), primary_key=True),
    # 'article' or 'duplicate'; 'story' (a story the run opened) and 'story_join' (an article of the run that
    # joined a story opened before the run): what the run summary counts as new and joined stories.
    Column("kind", String(16), primary_key=True),
    Column("row_id", Id, primary_key=True),
    Column("written_at", Timestamp, nullable=False, index=True),
)

Index("ix_duplicates_run", duplicates.c.run_id)
# For `source_health` and finding the latest runs.
Index("ix_fetches_source_fetched_at", fetches.c.source, fetches.c.fetched_at)
Index("ix_quarantine_source", quarantine.c.source)
Index("ix_pipeline_runs_started_at", pipeline_runs.c.started_at)
