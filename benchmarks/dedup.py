"""Score deduplication and story linking on a labelled JSONL file and print the figures.

    python benchmarks/dedup.py path/to/bbc_syndication.jsonl
    python benchmarks/dedup.py path/to/uci_headlines.jsonl
    python benchmarks/dedup.py samples/benchmarks/dedup.jsonl --repeat 1   # the small shipped sample

Each line: `{id, cluster_id, text, tier, related, ...}`. Scored are the functions the pipeline uses:
`tasks.dedupe.cluster_ids(texts)` (exact and near-duplicates, levels 1-2, plain texts: the headline
figure; `--with-sources` also scores it given each text's outlet, as the pipeline knows each article's source)
and `tasks.dedupe.story_ids(texts)` (same-story links, level 3). Figures on a shared machine are noisy: the
best of `--repeat` runs is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from math import comb
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks import dedupe


def pair_counts(truth: Sequence[Any], predicted: Sequence[Any]) -> tuple[int, int, int]:
    """(pairs together in both, pairs together in the prediction, pairs together in the truth)."""
    both = sum(comb(n, 2) for n in Counter(zip(truth, predicted, strict=True)).values())
    return both, sum(comb(n, 2) for n in Counter(predicted).values()), sum(comb(n, 2) for n in Counter(truth).values())


def pairwise_scores(truth: Sequence[Any], predicted: Sequence[Any]) -> dict[str, float]:
    both, in_predicted, in_truth = pair_counts(truth, predicted)
    precision = both / in_predicted if in_predicted else 1.0
    recall = both / in_truth if in_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": in_truth,
            "predicted_pairs": in_predicted}


def adjusted_rand_index(truth: Sequence[Any], predicted: Sequence[Any]) -> float:
    both, in_predicted, in_truth = pair_counts(truth, predicted)
    expected = in_predicted * in_truth / comb(len(truth), 2)
    best = (in_predicted + in_truth) / 2
    return 1.0 if best == expected else (both - expected) / (best - expected)


def recall_by_tier(rows: Sequence[dict[str, Any]], predicted: Sequence[int]) -> dict[str, tuple[int, int]]:
    """Per tier: how many copies landed with their cluster's original (or first member), out of how many."""
    anchor: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row["cluster_id"] not in anchor or row.get("tier") == "original":
            anchor[row["cluster_id"]] = i
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, row in enumerate(rows):
        first = anchor[row["cluster_id"]]
        if first == i:
            continue
        tally = found[row.get("tier", "?")]
        tally[0] += predicted[i] == predicted[first]
        tally[1] += 1
    return {tier: (hit, total) for tier, (hit, total) in sorted(found.items())}


def related_merged(rows: Sequence[dict[str, Any]], predicted: Sequence[int]) -> tuple[int, int]:
    """Follow-up stories (listed in `related`, different clusters) put in one cluster, out of all such pairs."""
    position = {row["id"]: i for i, row in enumerate(rows)}
    pairs = {tuple(sorted((i, position[other]))) for i, row in enumerate(rows)
             for other in row.get("related") or () if other in position}
    pairs = {(i, j) for i, j in pairs if rows[i]["cluster_id"] != rows[j]["cluster_id"]}
    return sum(predicted[i] == predicted[j] for i, j in pairs), len(pairs)


def timed(function: Callable[..., list[int]], texts: list[str],
          repeat: int) -> tuple[list[int], float, float]:
    """Labels, and the best wall-clock and CPU seconds of `repeat` runs (CPU time is steadier on a shared box)."""
    wall, cpu, labels = float("inf"), float("inf"), []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        labels = function(texts)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return labels, wall, cpu


def report(name: str, rows: list[dict[str, Any]], labels: list[int], seconds: float, cpu: float) -> None:
    truth = [row["cluster_id"] for row in rows]
    scores = pairwise_scores(truth, labels)
    print(f"\n{name}: {len(rows)} documents, {len(set(truth))} true clusters, {len(set(labels))} found")
    print(f"  speed: {len(rows) / seconds:,.0f} docs/s wall clock ({seconds:.2f} s), "
          f"{len(rows) / cpu:,.0f} docs/s of CPU time ({cpu:.2f} s)")
    print(f"  pairwise precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
          f"({scores['predicted_pairs']} pairs found, {scores['true_pairs']} true)")
    print(f"  adjusted Rand index {adjusted_rand_index(truth, labels):.4f}")
    by_tier = recall_by_tier(rows, labels)
    if len(by_tier) > 1:
        print("  recall by tier: " + ", ".join(f"{t} {h / n:.3f} ({h}/{n})" for t, (h, n) in by_tier.items()))
    merged, related = related_merged(rows, labels)
    if related:
        print(f"  related stories wrongly merged: {merged} of {related} pairs")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the fastest is reported")
    parser.add_argument("--with-sources", action="store_true",
                        help="also score cluster_ids given each text's outlet as its source (as the pipeline does)")
    parser.add_argument("--limit", type=int, help="score the first N documents only (a quick run)")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[:args.limit]
    texts = [row["text"] for row in rows]
    # The outlet of each text, when the file gives it, is its source: the pipeline knows each article's.
    sources = [row["outlet"] for row in rows] if all("outlet" in row for row in rows) else None
    dedupe.cluster_ids(texts[:50])  # warm up imports and caches
    # The headline figure: the scored call, plain texts and nothing else.
    report("duplicates (cluster_ids(texts))", rows, *timed(dedupe.cluster_ids, texts, args.repeat))
    if sources and args.with_sources:
        report("duplicates (cluster_ids(texts, sources=outlet)), as the pipeline calls it", rows,
               *timed(partial(dedupe.cluster_ids, sources=sources), texts, args.repeat))
    if hasattr(dedupe, "story_ids"):
        report("stories (story_ids)", rows, *timed(dedupe.story_ids, texts, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
