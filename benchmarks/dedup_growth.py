"""Does the cost of deduplicating a new document stay flat as the warehouse grows?

    python benchmarks/dedup_growth.py                                  # 100,000 documents, temporary SQLite
    python benchmarks/dedup_growth.py --warehouse postgresql+psycopg://user@host/db
    python benchmarks/dedup_growth.py --documents 20000 --full-load    # the whole load stage per batch

Generated documents (news-like word sequences, a tenth of them copies of earlier ones, most from earlier
batches) go through the pipeline's own `deduplicate` against the warehouse (`WarehouseIndex`: canonical URLs,
content hashes, LSH band keys of the window) in batches, and what the next batches look up is stored:
by default only that (the kept articles' rows with their content hash, signature and band keys, in one
transaction per batch), with `--full-load` the whole `load_batch` (text, full-text index, versions, stories).
Printed: the time of every tenth batch with the warehouse's size, then the mean of the first and last
tenth of the batches, their ratio, and the least-squares slope of the per-batch time against the number of
articles stored (seconds per batch per 10,000 articles): flat means a ratio near 1 and a slope near 0.
Last, the query plans of the lookups (EXPLAIN), which must use the indexes.

The warehouse must be empty (or new). Figures on a shared machine are noisy: compare deciles, not batches.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Connection, Engine, insert, select, text

from tasks import schema
from tasks.dedupe import DedupOutcome, KnownArticle, deduplicate
from tasks.load import bulk_insert, load_batch
from tasks.records import Article
from tasks.settings import Settings
from tasks.warehouse import WarehouseIndex, open_warehouse, write_transaction

SOURCES = [f"outlet-{n}" for n in range(20)]


class Generator:
    """News-like texts: paragraphs of Zipf-distributed words, titles, and copies of earlier texts."""

    def __init__(self, seed: int = 7) -> None:
        self.random = random.Random(seed)
        syllables = ["ba", "ko", "ri", "ta", "mel", "son", "dar", "vi", "lu", "pe", "nor", "gan", "sti", "que"]
        self.vocabulary = sorted({"".join(self.random.choices(syllables, k=self.random.randint(1, 4)))
                                  for _ in range(40000)})
        self.cumulative = list(_accumulate([1 / (rank + 1) for rank in range(len(self.vocabulary))]))
        self.earlier: list[tuple[str, str]] = []
        self.copies = 0

    def words(self, count: int) -> list[str]:
        return self.random.choices(self.vocabulary, cum_weights=self.cumulative, k=count)

    def sentence(self) -> str:
        return " ".join(self.words(self.random.randint(10, 28))).capitalize() + "."

    def original(self) -> tuple[str, str]:
        title = " ".join(self.words(7)).capitalize()
        paragraphs = [" ".join(self.sentence() for _ in range(self.random.randint(2, 4)))
                      for _ in range(self.random.randint(4, 9))]
        return title, "\n\n".join(paragraphs)

    def copy(self) -> tuple[str, str]:
        self.copies += 1
        title, text = self.random.choice(self.earlier[-20000:])
        paragraphs = text.split("\n\n")
        if self.random.random() < 0.5:
            paragraphs = paragraphs[:max(2, len(paragraphs) // 2)]  # cut
        return "Wire: " + title, "\n\n".join(["By Staff Reporter", *paragraphs, "Sign up for our newsletter."])

    def batch(self, size: int, start: int) -> list[Article]:
        articles = []
        for number in range(start, start + size):
            title, text = self.copy() if self.earlier and self.random.random() < 0.1 else self.original()
            self.earlier.append((title, text))
            url = f"https://news{number % 50}.example/{number}"
            articles.append(Article(source=self.random.choice(SOURCES), url=url, canonical_url=url,
                                    title=title, text=text, word_count=len(text.split())))
        return articles


class CountingIndex(WarehouseIndex):
    """The warehouse index, counting the stored articles whose signatures it returns (candidates to verify)."""

    matched = 0

    def signatures(self, ids: Iterable[int], since: datetime | None = None) -> list[KnownArticle]:
        found = super().signatures(ids, since)
        self.matched += len(found)
        return found


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def store_fingerprints(engine: Engine, run_id: str, outcome: DedupOutcome) -> None:
    """What later batches' lookups read, and nothing else: each kept article's row (canonical URL, content
    hash, first seen; no text), its signature and its band keys, in one transaction."""
    now = datetime.now(UTC)
    rows = [{"url": a.url, "canonical_url": a.canonical_url, "source": a.source, "title": a.title,
             "authors": [], "text": "", "word_count": a.word_count, "content_hash": a.content_hash,
             "first_seen_at": now, "last_seen_at": now, "last_run_id": run_id} for a in outcome.kept]
    with write_transaction(engine) as conn:
        a = schema.articles
        ids = dict(conn.execute(insert(a).returning(a.c.canonical_url, a.c.id), rows).all()) if rows else {}
        prints = [(ids[url], fingerprint) for url, fingerprint in outcome.fingerprints.items() if url in ids]
        bulk_insert(conn, schema.article_signatures, ("article_id", "signature"),
                    [(i, f.sketch) for i, f in prints])
        bulk_insert(conn, schema.article_band_keys, ("band_key", "article_id"),
                    sorted({(key, i) for i, f in prints for key in f.band_keys}))


def explain(conn: Connection) -> list[tuple[str, list[str]]]:
    """Query plans of the dedupe stage's lookups (as WarehouseIndex runs them), as the warehouse would run them now."""
    prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    key = conn.execute(select(schema.article_band_keys.c.band_key).limit(1)).scalar() or "0" * 16
    since = datetime.now(UTC) - timedelta(days=30)
    a, b, s = schema.articles, schema.article_band_keys, schema.article_signatures
    newest = (select(b.c.band_key, b.c.article_id).where(b.c.band_key == key).where(b.c.article_id > -1)
              .order_by(b.c.article_id.desc()).limit(20))
    statements = {
        "band_key_matches (per key, its newest)": newest,
        "signatures": select(a.c.id, a.c.canonical_url, s.c.signature)
        .join(s, s.c.article_id == a.c.id).where(a.c.id.in_([1, 2])).where(a.c.first_seen_at >= since),
        "by_content_hash": select(a.c.id, a.c.canonical_url, a.c.content_hash).where(a.c.content_hash.in_(["x", "y"])),
        "by_canonical_url": select(a.c.id, a.c.canonical_url).where(a.c.canonical_url.in_(["x", "y"])),
    }
    plans = []
    for name, statement in statements.items():
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        rows = conn.execute(text(prefix + str(compiled))).all()
        plans.append((name, [" ".join(str(v) for v in row[-1:]) for row in rows]))
    return plans


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--warehouse", help="SQLAlchemy URL of an empty warehouse (default: temporary SQLite)")
    parser.add_argument("--full-load", action="store_true",
                        help="load each batch with load_batch (text, full-text index, stories) instead of only "
                             "what the lookups read")
    parser.add_argument("--every", type=int, default=10, help="print every n-th batch")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.warehouse or f"sqlite:///{scratch}/growth.db"
        engine = open_warehouse(url)
        with engine.connect() as conn:
            if conn.execute(select(schema.articles.c.id).limit(1)).first():
                parser.error("the warehouse is not empty")
        settings, generator = Settings(), Generator()
        stored = dropped = 0
        seconds: list[float] = []
        cpu: list[float] = []  # this process's CPU time: steadier than wall clock on a shared machine
        sizes: list[int] = []
        dedupe_seconds: list[float] = []
        dedupe_cpu: list[float] = []
        print(f"{'store: load_batch' if args.full_load else 'store: fingerprints only'}; "
              f"{engine.dialect.name}; {args.documents:,} documents in batches of {args.batch_size:,}")
        print(f"{'batch':>6} {'in warehouse':>13} {'seconds':>8} {'cpu':>6} {'dedupe':>7} {'(cpu)':>6} {'store':>6} "
              f"{'matched':>8} {'dropped':>8}")
        for number, start in enumerate(range(0, args.documents, args.batch_size), start=1):
            articles = generator.batch(min(args.batch_size, args.documents - start), start)
            began, began_cpu = time.perf_counter(), time.process_time()
            index = CountingIndex(engine)
            outcome = deduplicate(articles, index, settings)
            deduplicated, deduplicated_cpu = time.perf_counter(), time.process_time()
            if args.full_load:
                load_batch(engine, f"run-{number}", outcome.kept, outcome.fingerprints, outcome.duplicates, settings)
            else:
                store_fingerprints(engine, f"run-{number}", outcome)
            finished = time.perf_counter()
            cpu.append(time.process_time() - began_cpu)
            dedupe_cpu.append(deduplicated_cpu - began_cpu)
            seconds.append(finished - began)
            dedupe_seconds.append(deduplicated - began)
            sizes.append(stored)
            dropped += len(outcome.duplicates)
            if number % args.every == 0 or number == 1:
                print(f"{number:>6} {stored:>13,} {finished - began:>8.2f} {cpu[-1]:>6.2f} "
                      f"{deduplicated - began:>7.2f} {dedupe_cpu[-1]:>6.2f} {finished - deduplicated:>6.2f} "
                      f"{index.matched:>8} {len(outcome.duplicates):>8}", flush=True)
            stored += len(outcome.kept)
        tenth = max(1, len(seconds) // 10)
        first, last = statistics.fmean(seconds[:tenth]), statistics.fmean(seconds[-tenth:])
        first_d, last_d = statistics.fmean(dedupe_seconds[:tenth]), statistics.fmean(dedupe_seconds[-tenth:])
        first_c, last_c = statistics.fmean(cpu[:tenth]), statistics.fmean(cpu[-tenth:])
        first_dc, last_dc = statistics.fmean(dedupe_cpu[:tenth]), statistics.fmean(dedupe_cpu[-tenth:])
        print(f"\n{args.documents:,} documents, {stored:,} stored, {dropped:,} dropped as copies "
              f"({generator.copies:,} generated as copies)")
        print(f"seconds per batch, mean of the first / last tenth: {first:.3f} / {last:.3f} (ratio {last / first:.2f});"
              f" dedupe alone {first_d:.3f} / {last_d:.3f} (ratio {last_d / first_d:.2f})")
        print(f"CPU seconds per batch, first / last tenth: {first_c:.3f} / {last_c:.3f} (ratio {last_c / first_c:.2f});"
              f" dedupe alone {first_dc:.3f} / {last_dc:.3f} (ratio {last_dc / first_dc:.2f})")
        per_10k = {name: slope(sizes, values) * 10_000
                   for name, values in (("wall", seconds), ("dedupe", dedupe_seconds), ("cpu", cpu),
                                        ("dedupe cpu", dedupe_cpu))}
        print(f"median {statistics.median(seconds):.3f} s; slope per 10,000 stored articles: {per_10k['wall']:+.4f} s "
              f"per batch (dedupe alone {per_10k['dedupe']:+.4f}; CPU {per_10k['cpu']:+.4f}, dedupe alone "
              f"{per_10k['dedupe cpu']:+.4f})")
        with engine.connect() as conn:
            for name, plan in explain(conn):
                print(f"plan of {name}:")
                for line in plan:
                    print(f"    {line}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
