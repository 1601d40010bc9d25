"""What the Great Expectations checks cost next to the stages they check.

    python benchmarks/quality.py                     # batches of 100, 1,000 and 10,000 articles
    python benchmarks/quality.py --sizes 100 1000

For each size: generated HTML pages (varied English prose, some boilerplate), the clean stage on them,
the `cleaned` suite on its output (records and sources tables), the dedupe stage and the `deduplicated`
suite, and the `fetched` suite on the pages (its stage, fetching, is I/O and not timed here). The context
is built once (as once per run) and its cost shown apart, like the import of Great Expectations. Target:
checks under a tenth of the stage for 1,000 articles and more. Figures on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.clean import clean_documents
from tasks.dedupe import EmptyIndex, deduplicate
from tasks.frames import articles_frame, documents_frame, duplicates_frame, sources_frame
from tasks.records import Document
from tasks.settings import Settings

WORDS = " ".join((
    "council harbour ferry school budget vote storm repair bridge island fishing quota festival library",
    "hospital housing plan residents said monday money spent three years after long debate roads rail",
    "buses future local shops families lived generations mayor told reporters town hall meeting work",
    "begin spring despite concerns raised traders fear higher rents parking charges fewer visitors",
    "summer months tourists fill cafes hotels beaches campsites coast",
)).split(" ")


def page(number: int, rng: random.Random) -> Document:
    paragraphs = []
    for _ in range(rng.randint(4, 9)):
        sentence_count = rng.randint(3, 6)
        paragraphs.append(" ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize()
                                   + "." for _ in range(sentence_count)))
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = (f"<html><head><title>Story {number}</title><meta property='article:published_time' "
            f"content='2026-11-{1 + number % 20:02d}T08:00:00Z'></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>Story {number}</h1>{body}</article><footer>Contact us</footer></body></html>")
    return Document(source=f"site-{number % 7}", url=f"https://news{number % 7}.example/{number}", html=html,
                    status_code=200)


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    args = parser.parse_args()
    settings = Settings()

    started = time.perf_counter()
    from tasks.validate import Validator

    validator = Validator()
    validator.validate("clean", articles_frame([]))  # reads the suite; nothing to check
    print(f"import of Great Expectations + context: {time.perf_counter() - started:.2f} s (once per run)\n")
    print(f"{'articles':>9} {'stage':>8} {'stage s':>9} {'checks s':>9} {'ratio':>7}")
    for size in args.sizes:
        rng = random.Random(size)
        documents = [page(n, rng) for n in range(size)]
        # Warm-up on a small batch: the first validation of each suite builds its GX objects.
        for stage, frame in (("fetch", documents_frame(documents[:5])),):
            validator.validate(stage, frame)

        _, fetch_checks = timed(validator.validate, "fetch", {
            "records": documents_frame(documents),
            "sources": sources_frame([d.source for d in documents], [], "failed_share")})
        cleaned, clean_seconds = timed(clean_documents, documents, settings)
        _, clean_checks = timed(validator.validate, "clean", {
            "records": articles_frame(cleaned.articles),
            "sources": sources_frame([a.source for a in cleaned.articles],
                                     [r.source for r in cleaned.rejections], "no_text_share")})
        deduped, dedupe_seconds = timed(deduplicate, cleaned.articles, EmptyIndex(), settings)
        kept = {a.canonical_url for a in deduped.kept}
        _, dedupe_checks = timed(validator.validate, "dedupe", {
            "records": articles_frame(deduped.kept), "duplicates": duplicates_frame(deduped.duplicates, kept)})

        print(f"{size:>9} {'fetch':>8} {'-':>9} {fetch_checks:>9.3f} {'-':>7}")
        for stage, seconds, checks in (("clean", clean_seconds, clean_checks),
                                       ("dedupe", dedupe_seconds, dedupe_checks)):
            print(f"{size:>9} {stage:>8} {seconds:>9.3f} {checks:>9.3f} {checks / seconds:>7.3f}")
        print(f"{'':>9} ({len(cleaned.articles)} articles, {len(cleaned.rejections)} rejected, "
              f"{len(deduped.duplicates)} duplicates)")


if __name__ == "__main__":
    main()
