"""Does the cost of deduplicating a new document stay flat as the warehouse grows?

    python benchmarks/dedup_growth.py                        # 100,000 documents into a temporary SQLite
    python benchmarks/dedup_growth.py --documents 20000 --warehouse postgresql+psycopg://user@host/db

Generated documents (random news-like word sequences, a tenth of them copies of earlier ones, some from
earlier batches) go through the pipeline's own dedupe and load functions in batches, and the time per
batch is printed from first to last with the warehouse size. The warehouse must be empty (or new).
Figures on a shared machine are noisy: compare the first and last deciles, not single batches.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.dedupe import deduplicate
from tasks.load import load_batch
from tasks.records import Article
from tasks.settings import Settings
from tasks.warehouse import WarehouseIndex, open_warehouse

SOURCES = [f"outlet-{n}" for n in range(20)]


class Generator:
    """News-like texts: paragraphs of Zipf-distributed words, titles, and copies of earlier texts."""

    def __init__(self, seed: int = 7) -> None:
        self.random = random.Random(seed)
        syllables = ["ba", "ko", "ri", "ta", "mel", "son", "dar", "vi", "lu", "pe", "nor", "gan", "sti", "que"]
        self.vocabulary = sorted({"".join(self.random.choices(syllables, k=self.random.randint(1, 4)))
                                  for _ in range(40000)})
        self.weights = [1 / (rank + 1) for rank in range(len(self.vocabulary))]
        self.earlier: list[tuple[str, str]] = []

    def sentence(self) -> str:
        words = self.random.choices(self.vocabulary, self.weights, k=self.random.randint(10, 28))
        return " ".join(words).capitalize() + "."

    def original(self) -> tuple[str, str]:
        title = " ".join(self.random.choices(self.vocabulary, self.weights, k=7)).capitalize()
        paragraphs = [" ".join(self.sentence() for _ in range(self.random.randint(2, 4)))
                      for _ in range(self.random.randint(4, 9))]
        return title, "\n\n".join(paragraphs)

    def copy(self) -> tuple[str, str]:
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
                                    title=title, text=text))
        return articles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--warehouse", help="SQLAlchemy URL of an empty warehouse (default: temporary SQLite)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.warehouse or f"sqlite:///{scratch}/growth.db"
        engine = open_warehouse(url)
        settings, generator = Settings(), Generator()
        loaded = dropped = 0
        seconds: list[float] = []
        print(f"{'batch':>6} {'in warehouse':>13} {'seconds':>8} {'dedupe':>7} {'load':>6} {'dropped':>8}")
        for number, start in enumerate(range(0, args.documents, args.batch_size), start=1):
            articles = generator.batch(min(args.batch_size, args.documents - start), start)
            began = time.perf_counter()
            outcome = deduplicate(articles, WarehouseIndex(engine), settings)
            deduplicated = time.perf_counter()
            load_batch(engine, f"run-{number}", outcome.kept, outcome.fingerprints, outcome.duplicates, settings)
            finished = time.perf_counter()
            seconds.append(finished - began)
            dropped += len(outcome.duplicates)
            print(f"{number:>6} {loaded:>13,} {finished - began:>8.2f} {deduplicated - began:>7.2f} "
                  f"{finished - deduplicated:>6.2f} {len(outcome.duplicates):>8}", flush=True)
            loaded += len(outcome.kept)
        tenth = max(1, len(seconds) // 10)
        first, last = sum(seconds[:tenth]) / tenth, sum(seconds[-tenth:]) / tenth
        print(f"\n{args.documents:,} documents, {loaded:,} kept, {dropped:,} dropped as copies")
        print(f"mean seconds per batch: first tenth {first:.2f}, last tenth {last:.2f} (ratio {last / first:.2f})")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
