"""Load speed: generated articles into SQLite and PostgreSQL through `tasks.load.load_batch`, in the
pipeline's batch size, next to the physical reference on the same rows in the same run.

    python benchmarks/load.py                                  # 100,000 articles, SQLite only
    python benchmarks/load.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/load.py --articles 20000 --postgres ... # quicker

Reference: `executemany` into an unindexed SQLite table; `COPY` into an unindexed PostgreSQL table. Next to
it, the same into a table whose only index is the warehouse's full-text one (FTS5; the GIN `tsvector`
expression index): what tokenising every text costs by itself, a ceiling for any load that indexes for search.
Pipeline: `load_batch` as the flow calls it, into the migrated warehouse with all its indexes (unique
canonical URL, content hash, source, published date, story, band keys, full-text search), upsert semantics
and story links, one transaction per batch. Every writer takes each batch in turn, so the machine's load
hits them alike. Only the writes are timed (generating texts and their dedup fingerprints is not). Resident
memory is sampled every 10% of the run to show it stays flat. Each PostgreSQL run uses its own database,
dropped at the end. The machine is shared: figures are noisy, compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tasks import migrate
from tasks.dedupe import fingerprint
from tasks.load import load_batch
from tasks.records import Article
from tasks.search import PG_DOCUMENT
from tasks.settings import get_settings
from tasks.textnorm import content_hash
from tasks.warehouse import WarehouseIndex, make_engine

VOCABULARY = """the council said on monday that a new budget for roads schools and hospitals would be
approved after a long debate residents protested outside the town hall while officials promised more money for
repairs the harbour storm damaged boats and the pier police closed the bridge for inspection fishermen warned
that quotas were too low the festival drew thousands of visitors to the old quarter prices rose again this month
as energy costs climbed the minister announced an inquiry into hospital waiting times teachers welcomed the plan
but unions asked for details the club won the final in extra time after a late goal""".split()  # noqa: SIM905
REFERENCE_COLUMNS = ("url", "canonical_url", "source", "title", "text", "word_count", "content_hash",
                     "published_at", "first_seen_at")


def generate(count: int, seed: int = 7) -> Iterator[Article]:
    """News-like articles: 150-1,500 words (median about 550), one in five published the same day."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        words = max(150, min(1500, int(rng.lognormvariate(6.3, 0.5))))
        sentences, body = [], []
        for i in range(words):
            body.append(rng.choice(VOCABULARY))
            if i % 18 == 17:
                sentences.append(" ".join(body).capitalize() + ".")
                body = []
        sentences.append(" ".join(body).capitalize() + f" Story {n}.")
        article_text = " ".join(sentences)
        url = f"https://news{n % 50}.example/{n // 50}/story-{n}.html"
        yield Article(source=f"outlet-{n % 50}", url=url, canonical_url=url,
                      title=" ".join(rng.choice(VOCABULARY) for _ in range(8)).capitalize() + f" {n}",
                      text=article_text, published_at=start + timedelta(minutes=n),
                      content_hash=content_hash(article_text))


def batches(count: int, size: int) -> Iterator[list[Article]]:
    batch: list[Article] = []
    for article in generate(count):
        batch.append(article)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def payload_bytes(batch: list[Article]) -> int:
    return sum(len(a.text.encode()) + len((a.title or "").encode()) + len(a.url.encode()) * 2 for a in batch)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class Meter:
    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self.rows = self.bytes = 0
        self.seconds = 0.0

        self.tenths: list[list[float]] = [[0, 0.0] for _ in range(10)]  # rows and seconds per tenth of the run

    def add(self, rows: int, size: int, seconds: float) -> None:
        tenth = self.tenths[min(9, self.rows * 10 // self.total)]
        tenth[0] += rows
        tenth[1] += seconds
        self.rows += rows
        self.bytes += size
        self.seconds += seconds

    def line(self, reference: Meter | None = None) -> str:
        rate = self.rows / self.seconds
        share = f"  {100 * rate / (reference.rows / reference.seconds):5.1f}% of {reference.name.split(',')[0]}" \
            if reference else ""
        first, last = (f"{rows / seconds:.0f}" if seconds else "-"
                       for rows, seconds in (self.tenths[0], self.tenths[-1]))
        return (f"  {self.name:<48}{self.rows:>8} rows {self.seconds:8.1f} s {rate:9.0f} rows/s "
                f"{self.bytes / 2**20 / self.seconds:7.1f} MB/s{share}\n"
                f"      rows/s in the first tenth of the run {first}, in the last {last}")


def reference_row(article: Article, now: datetime) -> tuple:
    return (article.url, article.canonical_url, article.source, article.title, article.text, article.word_count,
            article.content_hash, article.published_at, now)


class SqliteReference:
    """`executemany` into an unindexed table (or, `fts`, one whose FTS5 index a trigger keeps, as the
    warehouse's): the physical reference, and what the full-text index alone costs."""

    def __init__(self, url: str, fts: bool = False) -> None:
        self.name = "executemany, table with only FTS5" if fts else "executemany, unindexed table"
        self.engine = create_engine(url)
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE reference ({', '.join(REFERENCE_COLUMNS)})"))
            if fts:
                conn.execute(text("CREATE VIRTUAL TABLE reference_fts USING fts5(title, text, content='reference', "
                                  "tokenize='porter unicode61 remove_diacritics 2')"))
                conn.execute(text("CREATE TRIGGER reference_fts_insert AFTER INSERT ON reference BEGIN "
                                  "INSERT INTO reference_fts (rowid, title, text) VALUES (new.rowid, new.title, "
                                  "new.text); END"))
        self.raw = self.engine.raw_connection()

    def write(self, batch: list[Article], prints: dict, number: int) -> float:
        now = datetime.now(UTC)
        rows = [(*reference_row(a, now)[:7], a.published_at.isoformat(), now.isoformat()) for a in batch]
        started = time.perf_counter()
        cursor = self.raw.cursor()
        cursor.executemany(f"INSERT INTO reference VALUES ({', '.join('?' for _ in REFERENCE_COLUMNS)})", rows)
        self.raw.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


class PostgresReference:
    """`COPY` into an unindexed table (or, `fts`, one with only the warehouse's full-text GIN index)."""

    def __init__(self, url: str, fts: bool = False) -> None:
        self.name = "COPY, table with only the full-text index" if fts else "COPY, unindexed table"
        self.table = "reference_fts" if fts else "reference"
        self.engine = create_engine(url)
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {self.table} (url text, canonical_url text, source varchar(200), "
                              "title text, text text, word_count integer, content_hash varchar(64), "
                              "published_at timestamptz, first_seen_at timestamptz)"))
            if fts:
                conn.execute(text(f"CREATE INDEX ON {self.table} USING gin ({PG_DOCUMENT})"))
        self.raw = self.engine.raw_connection()

    def write(self, batch: list[Article], prints: dict, number: int) -> float:
        now = datetime.now(UTC)
        started = time.perf_counter()
        with self.raw.cursor() as cursor, \
                cursor.copy(f"COPY {self.table} ({', '.join(REFERENCE_COLUMNS)}) FROM STDIN") as copy:
            for article in batch:
                copy.write_row(reference_row(article, now))
        self.raw.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


class Pipeline:
    """`load_batch` as the flow calls it: the migrated warehouse with all its indexes (unique canonical URL,
    content hash, source, published date, story, band keys, full-text search), upserts, story links, one
    transaction per batch. `seen_up_to` is read as the dedupe stage reads it, untimed."""

    name = "load_batch: all indexes, upsert, stories"

    def __init__(self, url: str) -> None:
        migrate.upgrade(url)
        self.engine = make_engine(url)
        self.settings = get_settings()

    def write(self, batch: list[Article], prints: dict, number: int) -> float:
        seen_up_to = WarehouseIndex(self.engine).newest_id()
        started = time.perf_counter()
        load_batch(self.engine, f"bench-{number}", batch, prints, [], self.settings, seen_up_to=seen_up_to)
        return time.perf_counter() - started

    def close(self) -> None:
        self.engine.dispose()


def postgres_database(base_url: str) -> tuple[str, callable]:
    base = make_url(base_url)
    name = f"newsflow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def run(groups: dict[str, list], count: int, size: int) -> None:
    """Every writer takes each batch in turn (the machine's load hits them alike); one line per writer."""
    settings = get_settings()
    meters = {id(w): Meter(w.name, count) for writers in groups.values() for w in writers}
    memory: list[float] = []
    done = 0
    for number, batch in enumerate(batches(count, size)):
        prints = {a.canonical_url: fingerprint(a.text, settings) for a in batch}
        size_bytes = payload_bytes(batch)
        for writers in groups.values():
            for writer in writers:
                meters[id(writer)].add(len(batch), size_bytes, writer.write(batch, prints, number))
        if (done + len(batch)) * 10 // count > done * 10 // count or number == 0:
            memory.append(rss_mb())
        done += len(batch)
        if number % 20 == 19:
            print(f"  ... {done} articles", file=sys.stderr, flush=True)
    for label, writers in groups.items():
        reference = meters[id(writers[0])]
        print(label + "\n" + "\n".join(meters[id(w)].line(reference if i else None)
                                       for i, w in enumerate(writers)))
    print(f"resident memory (MB), after the first batch then every 10%: {' '.join(f'{m:.0f}' for m in memory)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=get_settings().batch_size)
    parser.add_argument("--postgres", metavar="URL", help="server to create a scratch database on")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    sample = list(generate(1000))
    print(f"{args.articles} articles in batches of {args.batch_size}; mean text "
          f"{sum(len(a.text) for a in sample) / len(sample):.0f} characters, "
          f"{sum(a.word_count for a in sample) / len(sample):.0f} words")
    groups: dict[str, list] = {}
    cleanup = []
    with tempfile.TemporaryDirectory() as folder:
        try:
            if not args.skip_sqlite:
                groups["SQLite"] = [SqliteReference(f"sqlite:///{folder}/reference.db"),
                                    SqliteReference(f"sqlite:///{folder}/reference_fts.db", fts=True),
                                    Pipeline(f"sqlite:///{folder}/warehouse.db")]
            if args.postgres:
                url, drop = postgres_database(args.postgres)
                cleanup.append(drop)
                groups["PostgreSQL"] = [PostgresReference(url), PostgresReference(url, fts=True), Pipeline(url)]
            run(groups, args.articles, args.batch_size)
        finally:
            for writer in (w for writers in groups.values() for w in writers):
                writer.close()
            for drop in cleanup:
                drop()


if __name__ == "__main__":
    main()
