"""Deduplicate stage: drop copies (same canonical URL, same normalised text, verified near-duplicates),
inside the batch and against what the warehouse already holds. Every copy dropped is recorded.

Near-duplicates: MinHash (rensa) over word shingles, LSH band keys for candidates, and every candidate
verified (estimated Jaccard, or containment so that a truncated copy is caught) before joining.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from rensa import RMinHash

from tasks.records import Article, Duplicate, StageStats
from tasks.settings import Settings
from tasks.textnorm import content_hash, fold_for_comparison

MINHASH_SEED = 1_337
_WORD = re.compile(r"\w+")


# --- signatures ------------------------------------------------------------------------------


def shingles(text: str, size: int) -> set[str]:
    """Word n-grams of the folded text (the whole text when it is shorter than one shingle)."""
    words = _WORD.findall(fold_for_comparison(text))
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def minhash(shingle_set: Iterable[str], permutations: int) -> list[int]:
    signature = RMinHash(num_perm=permutations, seed=MINHASH_SEED)
    signature.update(list(shingle_set))
    return signature.digest()


def band_keys(signature: Sequence[int], bands: int) -> list[str]:
    """One key per LSH band: documents sharing any key are candidates (then verified)."""
    rows = len(signature) // bands
    keys = []
    for band in range(bands):
        chunk = struct.pack(f"<{rows}I", *signature[band * rows : (band + 1) * rows])
        keys.append(f"{band:02d}:{hashlib.blake2b(chunk, digest_size=8).hexdigest()}")
    return keys


def estimated_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def containment(a: set[str], b: set[str]) -> float:
    """Share of the smaller shingle set found in the larger one (catches truncated copies)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


@dataclass(slots=True)
class Fingerprint:
    content_hash: str
    shingles: set[str]
    signature: list[int]
    band_keys: list[str]


def fingerprint(text: str, settings: Settings) -> Fingerprint:
    shingle_set = shingles(text, settings.shingle_size)
    signature = minhash(shingle_set, settings.minhash_permutations)
    return Fingerprint(content_hash(text), shingle_set, signature, band_keys(signature, settings.lsh_bands))


def verified_similarity(a: Fingerprint, b: Fingerprint, settings: Settings) -> float | None:
    """Similarity of a verified near-duplicate pair, or None when the candidate is not one."""
    jaccard = estimated_jaccard(a.signature, b.signature)
    if jaccard >= settings.near_jaccard_threshold:
        return round(jaccard, 4)
    contained = containment(a.shingles, b.shingles)
    if contained >= settings.near_containment_threshold:
        return round(contained, 4)
    return None


# --- the warehouse side ----------------------------------------------------------------------


@dataclass(slots=True)
class KnownArticle:
    id: int
    canonical_url: str
    text: str | None = None
    signature: list[int] | None = None


class DedupIndex(Protocol):
    """What the stage needs to know about articles already in the warehouse."""

    def by_canonical_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]: ...

    def by_content_hash(self, hashes: Iterable[str]) -> dict[str, KnownArticle]: ...

    def by_band_keys(self, keys: Iterable[str]) -> list[KnownArticle]: ...


class EmptyIndex:
    """An empty warehouse (and the pure, in-batch-only case)."""

    def by_canonical_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        return {}

    def by_content_hash(self, hashes: Iterable[str]) -> dict[str, KnownArticle]:
        return {}

    def by_band_keys(self, keys: Iterable[str]) -> list[KnownArticle]:
        return []


# --- the stage -------------------------------------------------------------------------------


@dataclass(slots=True)
class DedupOutcome:
    kept: list[Article] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)  # by canonical URL, for loading
    stats: StageStats = field(default_factory=lambda: StageStats("dedupe"))


def _preference(article: Article) -> tuple[datetime, int]:
    """Kept first: the earliest published, then the longest."""
    published = article.published_at or datetime.max.replace(tzinfo=UTC)
    return (published, -article.word_count)


def deduplicate(articles: Sequence[Article], index: DedupIndex, settings: Settings) -> DedupOutcome:
    """Keep one article per URL / text / near-duplicate cluster; record the others as duplicates."""
    outcome = DedupOutcome()
    outcome.stats.add("in", len(articles))
    # An article whose URL is already in the warehouse is the same article seen again: it is kept (the
    # load stage refreshes it) and wins over newcomers in the batch.
    known_urls = index.by_canonical_url({a.canonical_url for a in articles})
    ordered = sorted(articles, key=lambda a: (a.canonical_url not in known_urls, *_preference(a)))

    def drop(article: Article, kept_url: str, kind: str, similarity: float, kept_id: int | None) -> None:
        outcome.duplicates.append(Duplicate(article.url, article.source, kept_url, kind, similarity, kept_id,
                                            article.canonical_url))
        outcome.stats.add(f"duplicate_{kind}")

    # Level 1a: canonical URL repeated inside the batch.
    by_url: dict[str, Article] = {}
    for article in ordered:
        if article.canonical_url in by_url:
            drop(article, article.canonical_url, "url", 1.0, None)
        else:
            by_url[article.canonical_url] = article
    candidates = list(by_url.values())

    # Level 1b: same normalised text.
    prints = {a.canonical_url: fingerprint(a.text, settings) for a in candidates}
    for article in candidates:
        article.content_hash = prints[article.canonical_url].content_hash
    known_hashes = index.by_content_hash({p.content_hash for p in prints.values()})
    by_hash: dict[str, Article] = {}
    unique: list[Article] = []
    for article in candidates:
        digest = article.content_hash
        known = known_hashes.get(digest)
        if known and known.canonical_url != article.canonical_url and article.canonical_url not in known_urls:
            drop(article, known.canonical_url, "exact", 1.0, known.id)
        elif digest in by_hash:
            drop(article, by_hash[digest].canonical_url, "exact", 1.0, None)
        else:
            by_hash[digest] = article
            unique.append(article)

    # Level 2: near-duplicates, against the warehouse first, then inside the batch.
    kept_prints: dict[str, list[str]] = {}  # band key -> canonical URLs kept in this batch
    for article in unique:
        own = prints[article.canonical_url]
        match = None
        if article.canonical_url not in known_urls:
            for known in index.by_band_keys(own.band_keys):
                if known.canonical_url == article.canonical_url or not known.text:
                    continue
                other = fingerprint(known.text, settings)
                similarity = verified_similarity(own, other, settings)
                if similarity is not None:
                    match = (known.canonical_url, similarity, known.id)
                    break
        if match is None:
            for key in own.band_keys:
                for url in kept_prints.get(key, ()):
                    similarity = verified_similarity(own, prints[url], settings)
                    if similarity is not None:
                        match = (url, similarity, None)
                        break
                if match:
                    break
        if match:
            drop(article, match[0], "near", match[1], match[2])
            continue
        outcome.kept.append(article)
        outcome.fingerprints[article.canonical_url] = own
        for key in own.band_keys:
            kept_prints.setdefault(key, []).append(article.canonical_url)
    _point_at_survivors(outcome.duplicates)
    outcome.stats.add("out", len(outcome.kept))
    return outcome


def _point_at_survivors(duplicates: list[Duplicate]) -> None:
    """An exact copy may point at an article later dropped as a near copy: follow to the one kept."""
    target = {d.canonical_url: d for d in duplicates if d.kind != "url"}
    for duplicate in duplicates:
        seen = {duplicate.canonical_url}
        while duplicate.kept_url in target and duplicate.kept_url not in seen:
            seen.add(duplicate.kept_url)
            nxt = target[duplicate.kept_url]
            duplicate.kept_url, duplicate.kept_article_id = nxt.kept_url, nxt.kept_article_id


def cluster_ids(texts: list[str], settings: Settings | None = None) -> list[int]:
    """Cluster label per text (exact and near-duplicates share a label): the function benchmarks score."""
    settings = settings or Settings()
    articles = [Article(source="bench", url=f"doc:{i}", canonical_url=f"doc:{i}", text=t)
                for i, t in enumerate(texts)]
    outcome = deduplicate(articles, EmptyIndex(), settings)
    label = {a.canonical_url: i for i, a in enumerate(outcome.kept)}
    # A duplicate points at a kept article directly (kept ones are never dropped later).
    for duplicate in outcome.duplicates:
        label[duplicate.url] = label[duplicate.kept_url]
    return [label[f"doc:{i}"] for i in range(len(texts))]
