"""Article-extraction quality and speed on a folder laid out like Zyte's article-extraction benchmark.

    python benchmarks/extraction.py FOLDER [--only ours|trafilatura-precision|trafilatura-fast] [--worst N]
                                          [--rounds 5]

FOLDER holds `ground-truth.json` ({id: {"articleBody": ..., "url": ...}}) and `html/<id>.html.gz`.
The metric is the benchmark's own: token 4-gram multisets (tokens are `\\w+` matches, case kept; a text of
1-3 tokens is one shingle, an empty text none); per page TP = multiset intersection, FP = predicted excess,
FN = missing truth; precision is averaged over pages with a non-empty prediction, recall over all pages,
F1 = 2PR/(P+R) of the two means.

Speed is pages per second, single process, on already decompressed pages, every extractor timed the same
way: passes interleaved (ours, then each reference, round after round), a garbage collection before each
pass and outside its timing (so no extractor pays for another's garbage), the fastest pass counting. Two
clocks: wall time (`docs/s`), and the process's CPU time (`cpu docs/s`). On a shared machine other
processes' work stretches wall time, all passes alike when the load lasts; CPU time counts only this
process's work, so it is the figure to compare with measurements on an idle machine. The load average
before and after the run is printed.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def page_scores(predicted: str, truth: str) -> tuple[float | None, float]:
    """(precision or None when nothing was predicted, recall) of one page."""
    pred, true = shingles(predicted), shingles(truth)
    tp = sum((pred & true).values())
    fp = sum(pred.values()) - tp
    fn = sum(true.values()) - tp
    precision = tp / (tp + fp) if pred else None
    recall = tp / (tp + fn) if true else (1.0 if not pred else 0.0)
    return precision, recall


def score(predictions: dict[str, str], truths: dict[str, str]) -> tuple[float, float, float, dict]:
    per_page = {key: page_scores(predictions.get(key, ""), truth) for key, truth in truths.items()}
    precisions = [p for p, _ in per_page.values() if p is not None]
    recalls = [r for _, r in per_page.values()]
    mean_p = sum(precisions) / len(precisions) if precisions else 0.0
    mean_r = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * mean_p * mean_r / (mean_p + mean_r) if mean_p + mean_r else 0.0
    return mean_p, mean_r, f1, per_page


def load(folder: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {}
    for key, item in truth.items():
        raw = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        pages[key] = (raw.decode("utf-8", errors="replace"), item.get("url"))
    return pages, {key: item["articleBody"] for key, item in truth.items()}


def extractors() -> dict[str, Callable[[str, str | None], str]]:
    import logging

    import trafilatura

    from tasks.clean import extract_text

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    def trafilatura_with(**options):
        def run(html: str, url: str | None) -> str:
            return trafilatura.extract(html, url=url, deduplicate=False, **options) or ""
        return run

    return {
        "ours": extract_text,
        "trafilatura-precision": trafilatura_with(favor_precision=True),
        "trafilatura-fast": trafilatura_with(fast=True),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--only", action="append", help="run only this extractor (repeatable)")
    parser.add_argument("--worst", type=int, default=0, help="list the N worst pages of each extractor")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed passes, extractors interleaved; the fastest pass counts (shared machines)")
    args = parser.parse_args(argv)

    pages, truths = load(args.folder)
    chosen = {name: f for name, f in extractors().items() if not args.only or name in args.only}
    rounds = max(1, args.rounds)
    load_before = os.getloadavg()[0]
    predictions: dict[str, dict[str, str]] = {}
    best_wall: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    for _ in range(rounds):
        for name, extract in chosen.items():
            predictions.pop(name, None)
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            predictions[name] = {key: extract(html, url) for key, (html, url) in pages.items()}
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best_wall[name] = min(best_wall.get(name, float("inf")), wall)
            best_cpu[name] = min(best_cpu.get(name, float("inf")), cpu)

    print(f"{len(pages)} pages from {args.folder.name}; metric: token 4-gram multisets (Zyte benchmark); "
          f"speed: single process, best of {rounds} interleaved passes; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    print(f"{'extractor':24} {'P':>6} {'R':>6} {'F1':>6} {'docs/s':>8} {'cpu docs/s':>11}")
    for name in chosen:
        precision, recall, f1, per_page = score(predictions[name], truths)
        print(f"{name:24} {precision:6.3f} {recall:6.3f} {f1:6.3f} {len(pages) / best_wall[name]:8.1f} "
              f"{len(pages) / best_cpu[name]:11.1f}", flush=True)
        for key, (p, r) in sorted(per_page.items(), key=lambda kv: min(kv[1][0] or 0, kv[1][1]))[:args.worst]:
            print(f"    {key[:12]} P={p if p is None else round(p, 3)} R={r:.3f} {pages[key][1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
