"""Deduplicate stage: drop copies (same canonical URL, same normalised text, verified near-duplicates),
inside the batch and against what the warehouse already holds. Every copy dropped is recorded.

Near-duplicates: two MinHash sketches per text (rensa), one over word shingles of the whole body, one over
the lead (its first sentences, which wire copies keep even when they cut the end and add their own
headline, byline and footer). LSH band keys of both give candidates; every candidate is verified on the
sketches (estimated Jaccard of the bodies, containment of the smaller body, Jaccard of the leads) before
two texts are joined, and clusters are the connected components of verified pairs.

Normalising and shingling run vectorised over a whole batch: the folded texts are tokenised as one byte
buffer with numpy, tokens and shingles are hashed to 64-bit integers there, and rensa sketches the flat
hash buffer in one call. The benchmarked `cluster_ids` runs the same `deduplicate` as the pipeline.
"""

from __future__ import annotations

import array
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
from rensa import RMinHash

from tasks.records import Article, Duplicate, KnownArticle, StageStats
from tasks.settings import Settings
from tasks.stories import story_ids as story_ids  # level 3, scored by the benchmark as tasks.dedupe.story_ids
from tasks.textnorm import fold_lines_utf8

MINHASH_SEED = 1_337
LEDE_MIN_LINE_WORDS = 8  # shorter lines (headline, byline, "ADVERTISEMENT") are not part of the lead
MAX_BUCKET = 200  # a bucket shared by more texts is boilerplate-like; its pairs are sampled, not all taken

# --- hashing text to integers, vectorised ------------------------------------------------------

_U64 = np.uint64
_WORD_BYTE = np.zeros(256, dtype=bool)
_WORD_BYTE[[*b"0123456789_", *range(ord("a"), ord("z") + 1), *range(ord("A"), ord("Z") + 1)]] = True
_WORD_BYTE[0x80:] = True  # bytes of non-ASCII characters are word characters (letters of any script)
_BLANKED = np.arange(256, dtype=np.uint8)
_BLANKED[[9, 10, 11, 12, 13, 28, 29, 30, 31]] = 32  # what str.split() splits on, in ASCII, as a space
_SENTENCE_END = np.zeros(256, dtype=bool)
_SENTENCE_END[list(b".!?\"')")] = True
_PUNCTUATION = ~_WORD_BYTE & ~np.isin(np.arange(256), [0, 9, 10, 11, 12, 13, 32])
# Scripts written without spaces between words (as tasks.words): each of their characters is a word of its
# own, so that shingles are character n-grams there; and the CJK punctuation, which separates words.
_UNSPACED_RANGES = np.array([(0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x19E0, 0x19FF),
                             (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                             (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x3134F)])
_CJK_PUNCTUATION_RANGES = np.array([(0x3000, 0x303F), (0xFF01, 0xFF0F), (0xFF1A, 0xFF20), (0xFF5B, 0xFF65)])
_CJK_SENTENCE_ENDS = np.array([0x3002, 0xFF01, 0xFF0E, 0xFF1F, 0xFF61])  # 。！．？｡
_BASE = 0x100000001B3  # odd, so invertible modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 2**64)
_SHINGLE_MULTIPLIERS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                 0x27D4EB2F165667C5, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                                 0x85EBCA77C2B2AE63, 0xD6E8FEB86659FD93], dtype=_U64)
_powers = np.ones(1, dtype=_U64)
_inverse_powers = np.ones(1, dtype=_U64)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of (weak) polynomial hashes."""
    values = values ^ (values >> _U64(30))
    values = values * _U64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> _U64(27))
    values = values * _U64(0x94D049BB133111EB)
    return values ^ (values >> _U64(31))


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, without its hash-table path, many times slower on 64-bit keys)."""
    ordered = np.sort(values.ravel())
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _distinct_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and how often each occurs."""
    ordered = np.sort(values.ravel())
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def _first_of_each(values: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of each distinct value."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    return order[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else order


def _power_tables(length: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i modulo 2**64 for i < length (grown on demand, kept for the process)."""
    global _powers, _inverse_powers
    if len(_powers) < length:
        size = max(length, 2 * len(_powers))
        _powers, _inverse_powers = np.full(size, _BASE, dtype=_U64), np.full(size, _BASE_INVERSE, dtype=_U64)
        _powers[0] = _inverse_powers[0] = 1
        np.cumprod(_powers, out=_powers)
        np.cumprod(_inverse_powers, out=_inverse_powers)
    return _powers[:length], _inverse_powers[:length]


@dataclass(slots=True)
class Tokens:
    """Token hashes of several texts as one flat array; text i owns hashes[offsets[i]:offsets[i + 1]].

    `prose` marks tokens of lines of at least LEDE_MIN_LINE_WORDS words (not a headline, byline, ad
    label or list item) and `sentences` those of such lines that end like a sentence.
    """

    hashes: np.ndarray
    offsets: list[int]
    prose: np.ndarray | None = None
    sentences: np.ndarray | None = None
    lines: np.ndarray | None = None  # per token, the number of its line (lines of all texts in order)
    line_hashes: np.ndarray | None = None  # per line, a hash of its words

    def token_mask(self, texts: np.ndarray) -> np.ndarray:
        """Per token: whether it belongs to one of `texts` (sorted text numbers)."""
        counts = np.diff(self.offsets)
        chosen = np.zeros(len(counts), dtype=bool)
        chosen[texts] = True
        return np.repeat(chosen, counts)

    def texts(self, texts: np.ndarray) -> Tokens:
        """The tokens of `texts` only (sorted text numbers), with their line marks."""
        mask = self.token_mask(texts)
        counts = np.diff(self.offsets)[texts]
        return Tokens(self.hashes[mask], np.r_[0, np.cumsum(counts)].tolist(), self.prose[mask],
                      self.sentences[mask])

    def select(self, mask: np.ndarray, limit: int | None = None, fallback: bool = True) -> Tokens:
        """The masked tokens of each text (its first `limit` of them); all of a text's tokens when the mask
        leaves it none (unless not `fallback`)."""
        counts = np.diff(self.offsets)
        cumulative = np.zeros(len(mask) + 1, dtype=np.int64)
        np.cumsum(mask, out=cumulative[1:])
        empty = (cumulative[self.offsets[1:]] - cumulative[self.offsets[:-1]]) == 0
        if fallback and empty.any():
            mask = mask | np.repeat(empty & (counts > 0), counts)
            np.cumsum(mask, out=cumulative[1:])
        if limit is not None:  # rank of each token among its text's masked tokens
            mask = mask & (cumulative[1:] - np.repeat(cumulative[self.offsets[:-1]], counts) <= limit)
            np.cumsum(mask, out=cumulative[1:])
        return Tokens(self.hashes[mask], cumulative[self.offsets].tolist())


def tokenize(folded: Sequence[bytes], chunk_bytes: int = 1 << 20) -> tuple[Tokens, list[str]]:
    """Hash every word (run of letters, digits, '_' or non-ASCII) of each folded UTF-8 text, and give
    each text's content hash (sha256 with whitespace runs as one space, as `textnorm.content_hash`).

    A word's hash depends only on its bytes: sum(byte[k] * BASE**k) modulo 2**64 from prefix sums over
    the buffer, shifted back by the inverse power of the word's start, then mixed. Texts are processed
    in chunks of about `chunk_bytes` so that the arrays stay in the CPU cache.
    """
    chunks, offsets, digests, group, size = [], [0], [], [], 0
    for position, text in enumerate(folded):
        group.append(text)
        size += len(text) + 1
        if size >= chunk_bytes or position == len(folded) - 1:
            chunk = _tokenize_chunk(group, digests)
            chunks.append(chunk)
            offsets.extend((offsets[-1] + np.asarray(chunk.offsets[1:])).tolist())
            group, size = [], 0
    if not chunks:
        empty = np.zeros(0, dtype=_U64)
        return Tokens(empty, offsets, np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int64), empty), digests
    first_line = np.cumsum([0] + [len(c.line_hashes) for c in chunks[:-1]])
    return Tokens(np.concatenate([c.hashes for c in chunks]), offsets,
                  np.concatenate([c.prose for c in chunks]), np.concatenate([c.sentences for c in chunks]),
                  np.concatenate([c.lines + first for c, first in zip(chunks, first_line, strict=True)]),
                  np.concatenate([c.line_hashes for c in chunks])), digests


def _tokenize_chunk(folded: list[bytes], digests: list[str]) -> Tokens:
    starts = np.zeros(len(folded) + 1, dtype=np.int64)
    np.cumsum([len(text) + 1 for text in folded], out=starts[1:])
    buffer = np.frombuffer(b"\x00".join(folded) + b"\x00", dtype=np.uint8)
    powers, inverse_powers = _power_tables(len(buffer) + 1)
    prefix = np.zeros(len(buffer) + 1, dtype=_U64)
    np.cumsum(buffer * powers[:-1], out=prefix[1:])
    word_starts, word_ends, stops = _words(buffer)
    hashes = _mix((prefix[word_ends] - prefix[word_starts]) * inverse_powers[word_starts])
    # Lines: how many words each has, and whether its last word is followed by a sentence end.
    line = np.searchsorted(np.flatnonzero((buffer == 10) | (buffer == 0)), word_starts)
    words_in_line = np.bincount(line)
    last = np.flatnonzero(np.r_[line[1:] != line[:-1], True]) if len(line) else np.zeros(0, dtype=np.int64)
    after = buffer[word_ends[last]]
    after_next = buffer[np.minimum(word_ends[last] + 1, len(buffer) - 1)]
    sentence_line = np.zeros(len(words_in_line), dtype=bool)
    sentence_line[line[last]] = (np.take(_SENTENCE_END, after) | stops[word_ends[last]]
                                 | (np.take(_PUNCTUATION, after) & np.take(_SENTENCE_END, after_next)))
    prose = words_in_line[line] >= LEDE_MIN_LINE_WORDS
    # Non-empty lines numbered in order, each with the (order-blind) sum of its word hashes.
    line_starts = np.flatnonzero(np.r_[True, line[1:] != line[:-1]]) if len(line) else np.zeros(0, np.int64)
    line_numbers = np.cumsum(np.r_[False, line[1:] != line[:-1]]) if len(line) else np.zeros(0, np.int64)
    line_hashes = _mix(np.add.reduceat(hashes, line_starts)) if len(line) else np.zeros(0, dtype=_U64)
    # Content hashes: every whitespace run becomes one space (the separators count as whitespace).
    blanked = np.take(_BLANKED, buffer)
    blanked[starts[1:] - 1] = 32
    keep = blanked != 32
    keep[1:] |= keep[:-1]  # a space is kept after a non-space
    collapsed = blanked[keep].tobytes()
    ends = np.cumsum(np.add.reduceat(keep, starts[:-1], dtype=np.int64)).tolist()
    for begin, end in zip([0, *ends[:-1]], ends, strict=True):
        digests.append(hashlib.sha256(collapsed[begin:end].strip(b" ")).hexdigest())
    return Tokens(hashes, np.searchsorted(word_starts, starts).tolist(), prose, prose & sentence_line[line],
                  line_numbers, line_hashes)


def _words(buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the words of a UTF-8 buffer start and end (exclusive), and per byte whether a CJK sentence end
    (。？！) starts there. A word is a run of word bytes, except in scripts written without spaces, where
    every character is a word: otherwise a Chinese paragraph would be one word, and a copy with one
    character changed would share no shingle with its original."""
    is_word = np.take(_WORD_BYTE, buffer)
    stops = np.zeros(len(buffer), dtype=bool)
    if not len(buffer) or buffer.max() < 0xE0:  # no character of three bytes or more: nothing unspaced
        edges = np.diff(is_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
        return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), stops
    positions, lengths, code_points = _wide_characters(buffer)
    unspaced = _in_ranges(code_points, _UNSPACED_RANGES)
    punctuation = positions[_in_ranges(code_points, _CJK_PUNCTUATION_RANGES)]
    for extra in range(3):  # a punctuation mark's bytes (all three) are no word bytes
        is_word[punctuation + extra] = False
    stops[positions[np.isin(code_points, _CJK_SENTENCE_ENDS)]] = True
    # A word starts at each unspaced character, and right after one.
    forced = np.zeros(len(buffer) + 1, dtype=bool)
    forced[positions[unspaced]] = True
    forced[positions[unspaced] + lengths[unspaced]] = True
    before = np.r_[False, is_word[:-1]]
    after = np.r_[is_word[1:], False]
    starts = np.flatnonzero(is_word & (~before | forced[:-1]))
    ends = np.flatnonzero(is_word & (~after | forced[1:])) + 1
    return starts, ends, stops


def _wide_characters(buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The characters of three and four bytes in a UTF-8 buffer: where they start, their length, their
    code point (a sequence cut by the buffer's end is left out)."""
    wide = np.flatnonzero(buffer >= 0xE0)
    lengths = np.where(buffer[wide] >= 0xF0, 4, 3)
    whole = wide + lengths <= len(buffer)
    wide, lengths = wide[whole], lengths[whole]
    byte = [buffer[np.minimum(wide + k, len(buffer) - 1)].astype(np.int64) & 0x3F for k in range(4)]
    three = ((buffer[wide].astype(np.int64) & 0x0F) << 12) | (byte[1] << 6) | byte[2]
    four = ((buffer[wide].astype(np.int64) & 0x07) << 18) | (byte[1] << 12) | (byte[2] << 6) | byte[3]
    return wide, lengths, np.where(lengths == 4, four, three)


def _in_ranges(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Per value: whether it lies in one of the inclusive, sorted, disjoint `ranges`."""
    slot = np.searchsorted(ranges[:, 0], values, side="right") - 1
    return (slot >= 0) & (values <= ranges[np.maximum(slot, 0), 1])


def shingle_hashes(tokens: Tokens, size: int) -> Tokens:
    """Hashes of the word n-grams of each text (the whole text when it is shorter than one n-gram).

    A text without words gets one shingle of its own, so that empty texts never look alike.
    """
    offsets = np.asarray(tokens.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    flat = tokens.hashes
    windows = max(len(flat) - size + 1, 0)
    combined = flat[:windows] * _SHINGLE_MULTIPLIERS[0]
    for k in range(1, size):
        combined += flat[k:windows + k] * _SHINGLE_MULTIPLIERS[k]
    # A window is a shingle when it lies within the text it starts in: runs of valid starts per text.
    per_text = np.maximum(counts - size + 1, 0)
    edges = np.zeros(windows + 1, dtype=np.int8)
    np.add.at(edges, offsets[:-1][per_text > 0], 1)
    np.add.at(edges, (offsets[:-1] + per_text)[per_text > 0], -1)
    shingles = _mix(combined[np.cumsum(edges[:windows], dtype=np.int8).view(bool)])
    short = np.flatnonzero(counts < size)  # one shingle each: the whole (short or empty) text
    if len(short):
        whole = [int((flat[offsets[t]:offsets[t] + counts[t]] * _SHINGLE_MULTIPLIERS[:counts[t]]).sum())
                 if counts[t] else (0xE3_7000_0000 + t) * int(_SHINGLE_MULTIPLIERS[0]) for t in short.tolist()]
        before = np.concatenate([[0], np.cumsum(per_text)])[short]
        shingles = np.insert(shingles, before, _mix(np.array([w % 2**64 for w in whole], dtype=_U64)))
        per_text[short] += 1
    return Tokens(shingles, np.concatenate([[0], np.cumsum(per_text)]).tolist())


def distinct_counts(shingles: Tokens) -> np.ndarray:
    """Number of distinct shingles per text (sorted within each text, then runs counted)."""
    texts = len(shingles.offsets) - 1
    owner = np.repeat(np.arange(texts, dtype=_U64), np.diff(shingles.offsets))
    keys = np.sort((owner << _U64(40)) | (shingles.hashes >> _U64(24)))
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return np.bincount((keys[first] >> _U64(40)).astype(np.int64), minlength=texts)


def minhash_matrix(shingles: Tokens, permutations: int) -> np.ndarray:
    """One MinHash signature (uint32) per text, all computed by rensa in one call."""
    if len(shingles.offsets) <= 1:
        return np.zeros((0, permutations), dtype=np.uint32)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        shingles.hashes, np.asarray(shingles.offsets, dtype=_U64), permutations, MINHASH_SEED)
    flat = array.array("I")  # rensa gives lists of ints; array.extend reads them faster than numpy does
    for row in matrix.to_rows():
        flat.extend(row)
    return np.frombuffer(flat, dtype=np.uint32).reshape(-1, permutations)


def band_hashes(signatures: np.ndarray, bands: int, first_band: int = 0) -> np.ndarray:
    """(texts, bands) LSH keys: texts sharing a key in any band are candidates, then verified.

    Band numbers are mixed into the keys (`first_band` keeps the lead's bands apart from the body's).
    """
    rows = signatures.shape[1] // bands
    grouped = signatures[:, :bands * rows].reshape(len(signatures), bands, rows).astype(_U64)
    keys = np.zeros(grouped.shape[:2], dtype=_U64)
    for row in range(rows):
        keys = _mix(keys ^ grouped[:, :, row] ^ (_U64(row) << _U64(32)))
    return _mix(keys + np.arange(first_band, first_band + bands, dtype=_U64) * _SHINGLE_MULTIPLIERS[1])


def key_strings(keys: np.ndarray) -> list[list[str]]:
    """Band keys as the 16-hex-digit strings stored in `article_band_keys`, one list per text."""
    digits = np.frombuffer(keys.astype(">u8").tobytes().hex().encode("ascii"), dtype="S16")
    return digits.astype(str).reshape(keys.shape).tolist()


# --- sketches of a batch ----------------------------------------------------------------------


@dataclass(slots=True)
class Sketches:
    """What deduplication knows of each text of a batch (row i is text i)."""

    content_hashes: list[str]
    sizes: np.ndarray  # distinct body shingles
    body: np.ndarray  # (texts, permutations) MinHash of the body shingles
    lede: np.ndarray  # (texts, lede permutations) MinHash of the lead shingles

    def __len__(self) -> int:
        return len(self.content_hashes)

    def extend(self, other: Sketches) -> Sketches:
        return Sketches(self.content_hashes + other.content_hashes, np.concatenate([self.sizes, other.sizes]),
                        np.concatenate([self.body, other.body]), np.concatenate([self.lede, other.lede]))

    def pack(self, row: int) -> bytes:
        """One text's sketch for the warehouse: shingle count, body signature, lead signature."""
        return self.pack_rows([row])[0]

    def pack_rows(self, rows: Sequence[int]) -> list[bytes]:
        """`pack` of several rows at once."""
        packed = np.concatenate([self.sizes[rows, None].astype("<u4"), self.body[rows].astype("<u4"),
                                 self.lede[rows].astype("<u4")], axis=1)
        return [row.tobytes() for row in packed]

    @staticmethod
    def unpack(blobs: Sequence[bytes], settings: Settings) -> Sketches:
        """Sketches of stored rows (the caller drops blobs of another shape, e.g. older settings)."""
        width = 1 + settings.minhash_permutations + settings.lede_permutations
        data = np.frombuffer(b"".join(blobs), dtype="<u4").reshape(len(blobs), width).astype(np.uint32)
        return Sketches([""] * len(blobs), data[:, 0].astype(np.int64),
                        data[:, 1:1 + settings.minhash_permutations], data[:, 1 + settings.minhash_permutations:])

    @staticmethod
    def packed_size(settings: Settings) -> int:
        return 4 * (1 + settings.minhash_permutations + settings.lede_permutations)

    def lsh_keys(self, settings: Settings) -> np.ndarray:
        """(texts, body bands + lead bands) LSH keys."""
        return np.concatenate([band_hashes(self.body, settings.lsh_bands),
                               band_hashes(self.lede, settings.lede_bands, settings.lsh_bands)], axis=1)


def sketch(texts: Sequence[str], settings: Settings, sources: Sequence[str] | None = None) -> Sketches:
    """Content hashes and MinHash sketches of a batch of texts (`sources`: where each came from).

    Boilerplate lines are left out of the sketches: lines found in `boilerplate_min_texts` texts of one source,
    and lines found in texts of that many different stories of the batch, whatever their source (an outlet's
    footer, when the caller cannot tell the outlet). See `story_groups` for how stories are told apart.
    """
    tokens, digests = tokenize([fold_lines_utf8(text) for text in texts])
    batch = _Batch(tokens, digests, sources)
    min_texts = settings.boilerplate_min_texts
    content = tokens.prose & batch.spread_below(batch.same_text, batch.source_of, min_texts)
    sketches, body = _sketch_tokens(tokens, content, digests, settings)
    if min_texts < 2 or len(digests) < min_texts:
        return sketches
    everywhere = np.zeros(len(digests), dtype=np.int64)
    shared = ~batch.spread_below(story_groups(batch, sketches, body, settings), everywhere, min_texts)
    changed = _distinct(batch.text_of_token[content & shared])
    if len(changed):
        content &= ~shared
        redone, _ = _sketch_tokens(tokens.texts(changed), content[tokens.token_mask(changed)], [], settings)
        sketches.sizes[changed], sketches.body[changed], sketches.lede[changed] = \
            redone.sizes, redone.body, redone.lede
    return sketches


def _sketch_tokens(tokens: Tokens, content: np.ndarray, digests: list[str],
                   settings: Settings) -> tuple[Sketches, Tokens]:
    """Sketches of the `content` tokens of each text, and the hashes of its body shingles."""
    body = shingle_hashes(tokens.select(content), settings.shingle_size)
    lede = shingle_hashes(tokens.select(content & tokens.sentences, settings.lede_words), settings.lede_shingle_size)
    return Sketches(digests, distinct_counts(body), minhash_matrix(body, settings.minhash_permutations),
                    minhash_matrix(lede, settings.lede_permutations)), body


class _Batch:
    """The lines of a batch's texts: which text each line is in, and how widely each line recurs."""

    def __init__(self, tokens: Tokens, digests: Sequence[str], sources: Sequence[str] | None) -> None:
        self.tokens = tokens
        self.text_of_token = np.repeat(np.arange(len(digests)), np.diff(tokens.offsets))
        self.line_text = np.zeros(len(tokens.line_hashes), dtype=np.int64)
        self.line_text[tokens.lines] = self.text_of_token
        first_text: dict[str, int] = {}  # texts with one content hash count as one
        self.same_text = np.array([first_text.setdefault(d, i) for i, d in enumerate(digests)], dtype=np.int64)
        source_ids: dict[str, int] = {}
        self.source_of = np.array([source_ids.setdefault(s, len(source_ids)) for s in sources] if sources
                                  else [0] * len(digests), dtype=np.int64)

    def spread(self, group_of: np.ndarray, source_of: np.ndarray) -> np.ndarray:
        """Per line: in how many groups (`group_of`, per text) of its source (`source_of`, per text) it is."""
        line_keys = _mix(self.tokens.line_hashes ^ (source_of[self.line_text].astype(_U64) * _SHINGLE_MULTIPLIERS[2]))
        in_group = _mix(line_keys ^ (group_of[self.line_text].astype(_U64) * _SHINGLE_MULTIPLIERS[3]))
        keys, counts = _distinct_counts(line_keys[_first_of_each(in_group)])
        return counts[np.searchsorted(keys, line_keys)]

    def spread_below(self, group_of: np.ndarray, source_of: np.ndarray, least: int) -> np.ndarray:
        """Per token: whether its line is in fewer than `least` groups of its source."""
        if least < 2 or not len(self.tokens.hashes):
            return np.ones(len(self.tokens.hashes), dtype=bool)
        return self.spread(group_of, source_of)[self.tokens.lines] < least


def story_groups(batch: _Batch, sketches: Sketches, body: Tokens, settings: Settings) -> np.ndarray:
    """Per text, a label shared by the texts of one story in the batch (`body`: the texts' body shingles).

    Stories are the connected components of verified near-duplicate pairs, counting only the pairs where
    one text's own lines (its rare lines, found in fewer than `boilerplate_min_texts` texts) share a word
    shingle with the other's body, or where one text has no rare line. Copies of one wire story share their
    paragraphs, and a copy's edited sentences still share shingles with the original's; stories dressed
    in one outlet's header and footer are near-duplicates by those, but their own lines have nothing in
    common. One shingle in four, sampled by hash alike in every text, is looked at.
    """
    tokens, texts = batch.tokens, len(sketches)
    pairs = candidate_pairs(sketches.lsh_keys(settings))
    pairs = pairs[verify(sketches, pairs[:, 0], sketches, pairs[:, 1], settings) > 0]
    if len(pairs):
        rare = tokens.prose & batch.spread_below(batch.same_text, np.zeros(texts, dtype=np.int64),
                                                 settings.boilerplate_min_texts)
        has_rare = np.diff(np.r_[0, np.cumsum(rare)][tokens.offsets]) > 0
        own = _sampled(shingle_hashes(tokens.select(rare, fallback=False), settings.shingle_size))
        whole = _sampled(body)
        both = has_rare[pairs[:, 0]] & has_rare[pairs[:, 1]]
        # Directed pairs (i, j) where both have rare lines: is one of i's own sampled shingles in j's body?
        directed = np.concatenate([pairs[both], pairs[both][:, ::-1]])
        counts = np.diff(own.offsets)[directed[:, 0]]
        first = np.asarray(own.offsets[:-1], dtype=np.int64)[directed[:, 0]]
        index = np.repeat(first - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        target = np.repeat(directed[:, 1], counts).astype(_U64)
        owners = np.repeat(np.arange(texts, dtype=_U64), np.diff(whole.offsets))
        haystack = np.sort(_mix(whole.hashes ^ (owners * _SHINGLE_MULTIPLIERS[4])))
        needles = _mix(own.hashes[index] ^ (target * _SHINGLE_MULTIPLIERS[4]))
        order = np.argsort(needles)  # sorted needles find their places with far fewer cache misses
        found = np.zeros(len(needles), dtype=bool)
        if len(haystack):
            found[order] = haystack[np.searchsorted(haystack, needles[order]).clip(max=len(haystack) - 1)] \
                == needles[order]
        hits = np.bincount(np.repeat(np.arange(len(directed)), counts), weights=found, minlength=len(directed)) > 0
        same = ~both
        same[both] = hits[:both.sum()] | hits[both.sum():]
        pairs = pairs[same]
    label = np.arange(texts)
    while len(pairs):  # label propagation with pointer jumping: a few rounds
        np.minimum.at(label, pairs[:, 0], label[pairs[:, 1]])
        np.minimum.at(label, pairs[:, 1], label[pairs[:, 0]])
        label = label[label]
        if (label[pairs[:, 0]] == label[pairs[:, 1]]).all():
            break
    return label


def _sampled(shingles: Tokens) -> Tokens:
    """One shingle in four of each text, chosen by hash (the same shingle is chosen in every text)."""
    chosen = (shingles.hashes >> _U64(62)) == 0
    return Tokens(shingles.hashes[chosen], np.r_[0, np.cumsum(chosen)][shingles.offsets].tolist())


def verify(left: Sketches, i: np.ndarray, right: Sketches, j: np.ndarray, settings: Settings) -> np.ndarray:
    """Similarity of each candidate pair (left[i], right[j]) when verified as near-duplicates, else 0.

    Verified when the bodies' estimated Jaccard, the estimated containment of the smaller body in the
    larger, or the leads' estimated Jaccard reaches its threshold (the first high enough is reported).
    """
    if len(i) == 0:
        return np.zeros(0)
    jaccard = (left.body[i] == right.body[j]).mean(axis=1)
    small = np.minimum(left.sizes[i], right.sizes[j]).clip(min=1)
    containment = np.minimum(jaccard * (left.sizes[i] + right.sizes[j]) / ((1 + jaccard) * small), 1.0)
    lede = (left.lede[i] == right.lede[j]).mean(axis=1)
    return np.where(jaccard >= settings.near_jaccard_threshold, jaccard,
                    np.where(containment >= settings.near_containment_threshold, containment,
                             np.where(lede >= settings.near_lede_threshold, lede, 0.0))).round(4)


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """(pairs, 2) row pairs i < j sharing at least one LSH key (keys: (texts, bands))."""
    owner = np.repeat(np.arange(keys.shape[0], dtype=np.int64), keys.shape[1])
    codes = sharing_pairs(keys.ravel(), owner, keys.shape[0])
    return np.column_stack([codes // keys.shape[0], codes % keys.shape[0]])


def sharing_pairs(values: np.ndarray, owner: np.ndarray, texts: int) -> np.ndarray:
    """Pairs of texts i < j (as codes i * texts + j, sorted) that share a value (`owner`: each value's text).

    Buckets (texts with one value) are grouped by size so that all pairs of all buckets of one size come from
    one numpy operation. A bucket of more than MAX_BUCKET texts (boilerplate-like) yields only neighbour pairs.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(values)
    values, owner = values[order], owner[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for size in _distinct(sizes[sizes > 1]).tolist():
        members = owner[starts[sizes == size][:, None] + np.arange(size)]  # (buckets, size)
        if size > MAX_BUCKET:
            left, right = np.arange(size - 1), np.arange(1, size)
        else:
            left, right = np.triu_indices(size, k=1)
        pairs.append(np.column_stack([members[:, left].ravel(), members[:, right].ravel()]))
    found = np.concatenate(pairs)
    low, high = np.minimum(found[:, 0], found[:, 1]), np.maximum(found[:, 0], found[:, 1])
    return _distinct((low * texts + high)[low != high])


# --- the warehouse side ----------------------------------------------------------------------


class DedupIndex(Protocol):
    """What the stage needs to know about articles already in the warehouse."""

    def by_canonical_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]: ...

    def by_content_hash(self, hashes: Iterable[str]) -> dict[str, KnownArticle]: ...

    def band_key_matches(self, keys: Iterable[str], per_key: int | None = None) -> list[tuple[str, int]]:
        """(band key, article id) of stored articles with any of the keys: of each key its `per_key` newest."""
        ...

    def signatures(self, ids: Iterable[int], since: datetime | None = None) -> list[KnownArticle]:
        """Articles by id (first seen since `since`), with their packed sketches."""
        ...


class EmptyIndex:
    """An empty warehouse (and the pure, in-batch-only case)."""

    def by_canonical_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        return {}

    def by_content_hash(self, hashes: Iterable[str]) -> dict[str, KnownArticle]:
        return {}

    def band_key_matches(self, keys: Iterable[str], per_key: int | None = None) -> list[tuple[str, int]]:
        return []

    def signatures(self, ids: Iterable[int], since: datetime | None = None) -> list[KnownArticle]:
        return []


# --- the stage -------------------------------------------------------------------------------


@dataclass(slots=True)
class Fingerprint:
    """What the load stage stores for a kept article: its packed sketch and LSH band keys."""

    content_hash: str
    sketch: bytes
    band_keys: list[str]


def fingerprint(text: str, settings: Settings) -> Fingerprint:
    """The stored fingerprint of one text (the stage computes them a batch at a time)."""
    sketches = sketch([text], settings)
    return Fingerprint(sketches.content_hashes[0], sketches.pack(0), key_strings(sketches.lsh_keys(settings))[0])


@dataclass(slots=True)
class DedupOutcome:
    kept: list[Article] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)  # by canonical URL, for loading
    stats: StageStats = field(default_factory=lambda: StageStats("dedupe"))
    seen_up_to: int | None = None  # newest article id of the warehouse it was compared with (load's recheck)


def _preference(article: Article) -> tuple[datetime, int, str]:
    """Kept first: the earliest published, then the longest (then the URL, for a stable choice)."""
    published = article.published_at or datetime.max.replace(tzinfo=UTC)
    return (published, -article.word_count, article.canonical_url)


class _Components:
    """Union-find over integer nodes."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, node: int) -> int:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def deduplicate(articles: Sequence[Article], index: DedupIndex, settings: Settings) -> DedupOutcome:
    """Keep one article per URL / text / near-duplicate cluster; record the others as duplicates."""
    outcome = DedupOutcome()
    outcome.stats.add("in", len(articles))
    # An article whose URL is already in the warehouse is the same article seen again: it is kept (the
    # load stage refreshes it) and wins over newcomers in the batch.
    known_urls = index.by_canonical_url({a.canonical_url for a in articles})
    ordered = sorted(articles, key=lambda a: (a.canonical_url not in known_urls, *_preference(a)))

    def drop(article: Article, kept_url: str, kind: str, similarity: float, kept_id: int | None) -> None:
        outcome.duplicates.append(Duplicate(article.url, article.source, kept_url, kind, float(similarity),
                                            kept_id, article.canonical_url, article.input_hash))
        outcome.stats.add(f"duplicate_{kind}")

    # Level 1a: canonical URL repeated inside the batch.
    by_url: dict[str, Article] = {}
    for article in ordered:
        if article.canonical_url in by_url:
            drop(article, article.canonical_url, "url", 1.0, None)
        else:
            by_url[article.canonical_url] = article
    candidates = list(by_url.values())

    # Level 1b: same normalised text, in the warehouse (forever) or earlier in the batch.
    sketches = sketch([a.text for a in candidates], settings, [a.source for a in candidates])
    for article, digest in zip(candidates, sketches.content_hashes, strict=True):
        article.content_hash = digest
    known_hashes = index.by_content_hash(set(sketches.content_hashes))
    first_with_hash: dict[str, int] = {}
    rows: list[int] = []  # rows of `sketches` still in play
    for row, article in enumerate(candidates):
        digest, is_known = article.content_hash, article.canonical_url in known_urls
        known = known_hashes.get(digest)
        if known and known.canonical_url != article.canonical_url and not is_known:
            drop(article, known.canonical_url, "exact", 1.0, known.id)
        elif digest in first_with_hash and not is_known:
            drop(article, candidates[first_with_hash[digest]].canonical_url, "exact", 1.0, None)
        else:
            first_with_hash.setdefault(digest, row)
            rows.append(row)

    # Level 2: verified near-duplicates among the rest and the warehouse's recent articles.
    lsh_keys = sketches.lsh_keys(settings)
    since = datetime.now(UTC) - timedelta(days=settings.dedupe_window_days)
    distinct_keys = _distinct(lsh_keys[rows])
    key_texts = key_strings(distinct_keys.reshape(1, -1))[0] if len(distinct_keys) else []
    matches = index.band_key_matches(key_texts, settings.dedupe_key_matches)
    closest = closest_known(lsh_keys[rows], distinct_keys, key_texts, matches, settings.dedupe_known_per_text)
    known = [k for k in index.signatures(closest.tolist(), since)
             if k.sketch is not None and len(k.sketch) == Sketches.packed_size(settings)
             and k.canonical_url not in by_url]
    known.sort(key=lambda k: k.id)  # the first loaded is the one copies point at
    # Nodes: the batch's rows, then the known articles.
    nodes = sketches.extend(Sketches.unpack([k.sketch for k in known], settings)) if known else sketches
    live = np.asarray([*rows, *range(len(candidates), len(nodes))], dtype=np.int64)
    all_keys = np.concatenate([lsh_keys[rows], nodes.lsh_keys(settings)[len(candidates):]]) if known \
        else lsh_keys[rows]
    links = verified_links(nodes, live, all_keys, settings, first_known=len(candidates))

    # Clusters: connected components of verified pairs.
    components = _Components(len(nodes))
    for a, b, _ in links:
        components.union(a, b)
    clusters: dict[int, list[int]] = defaultdict(list)
    for node in live.tolist():
        clusters[components.find(node)].append(node)
    dropped: list[tuple[int, int]] = []  # (copy, the node it is a copy of)
    survivors: list[int] = []
    for members in clusters.values():
        batch = [n for n in members if n < len(candidates)]  # in preference order, as `candidates`
        stored = [n for n in members if n >= len(candidates)]
        seen_again = [n for n in batch if candidates[n].canonical_url in known_urls]
        # Articles already stored stay; newcomers point at the first stored one, else at the preferred.
        keep = seen_again if stored or seen_again else batch[:1]
        target = stored[0] if stored else keep[0]
        survivors += keep
        dropped += [(n, target) for n in batch if n not in keep]
    pairs = np.asarray(dropped, dtype=np.int64).reshape(-1, 2)
    direct = verify(nodes, pairs[:, 0], nodes, pairs[:, 1], settings)
    # Joined through other copies: report the bodies' Jaccard.
    body = (nodes.body[pairs[:, 0]] == nodes.body[pairs[:, 1]]).mean(axis=1).round(4)
    for (node, target), score in zip(dropped, np.where(direct > 0, direct, body).tolist(), strict=True):
        if target >= len(candidates):
            stored_article = known[target - len(candidates)]
            drop(candidates[node], stored_article.canonical_url, "near", score, stored_article.id)
        else:
            drop(candidates[node], candidates[target].canonical_url, "near", score, None)
    survivors.sort()
    packed = sketches.pack_rows(survivors)
    for node, sketch_bytes, band_keys in zip(survivors, packed, key_strings(lsh_keys[survivors]), strict=True):
        article = candidates[node]
        outcome.kept.append(article)
        outcome.fingerprints[article.canonical_url] = Fingerprint(article.content_hash, sketch_bytes, band_keys)
    _point_at_survivors(outcome.duplicates)
    outcome.stats.add("out", len(outcome.kept))
    return outcome


def closest_known(keys: np.ndarray, distinct_keys: np.ndarray, key_texts: Sequence[str],
                  matches: Sequence[tuple[str, int]], per_text: int) -> np.ndarray:
    """Ids of the stored articles worth verifying: for each text (a row of `keys`, its LSH keys), the
    `per_text` stored articles sharing the most keys with it (the newest first among equals).

    `distinct_keys` are the sorted distinct keys of all texts, `key_texts` the same as stored strings, and
    `matches` the (key, article id) pairs the warehouse holds. A copy shares many bands with its original
    (a body Jaccard of 0.55 makes three of 32 four-row bands likely, a lead's 0.6 seven of 32 three-row
    ones), an unrelated text of similar phrasing one or two: the bound keeps the originals and makes the
    work per batch independent of how many stored texts look alike.
    """
    if not matches or not len(keys):
        return np.zeros(0, dtype=np.int64)
    position = {key: n for n, key in enumerate(key_texts)}
    matched_key = np.fromiter((position[key] for key, _ in matches), dtype=np.int64, count=len(matches))
    matched_id = np.fromiter((article for _, article in matches), dtype=np.int64, count=len(matches))
    order = np.argsort(matched_key, kind="stable")
    matched_key, matched_id = matched_key[order], matched_id[order]
    first = np.searchsorted(matched_key, np.arange(len(key_texts)))
    per_key = np.searchsorted(matched_key, np.arange(len(key_texts)), side="right") - first
    # Every (text, stored article) sharing a key, once per key shared.
    text_of = np.repeat(np.arange(len(keys), dtype=np.int64), keys.shape[1])
    key_of = np.searchsorted(distinct_keys, keys.ravel())
    counts = per_key[key_of]
    index = np.repeat(first[key_of] - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
    texts, articles = np.repeat(text_of, counts), matched_id[index]
    if not len(texts):
        return np.zeros(0, dtype=np.int64)
    # Shared keys per (text, article): runs after sorting by both; then per text the most shared, newest first.
    order = np.lexsort((articles, texts))
    texts, articles = texts[order], articles[order]
    starts = np.flatnonzero(np.r_[True, (texts[1:] != texts[:-1]) | (articles[1:] != articles[:-1])])
    shared = np.diff(np.r_[starts, len(texts)])
    texts, articles = texts[starts], articles[starts]
    order = np.lexsort((-articles, -shared, texts))
    texts, articles = texts[order], articles[order]
    text_starts = np.flatnonzero(np.r_[True, texts[1:] != texts[:-1]])
    rank = np.arange(len(texts)) - np.repeat(text_starts, np.diff(np.r_[text_starts, len(texts)]))
    return _distinct(articles[rank < per_text])


def verified_links(nodes: Sketches, live: np.ndarray, keys: np.ndarray, settings: Settings,
                   first_known: int | None = None) -> list[tuple[int, int, float]]:
    """Verified near-duplicate pairs (row, row, similarity) among the `live` rows of `nodes` (keys: theirs).

    Rows from `first_known` on are stored articles: pairs of two of them are not looked at (they were
    compared when loaded), so the work follows the batch, not how many stored articles it matched.
    """
    pairs = live[candidate_pairs(keys)]
    if first_known is not None:
        pairs = pairs[pairs.min(axis=1) < first_known]
    scores = verify(nodes, pairs[:, 0], nodes, pairs[:, 1], settings)
    found = scores > 0
    return list(zip(pairs[found, 0].tolist(), pairs[found, 1].tolist(), scores[found].tolist(), strict=True))


def _point_at_survivors(duplicates: list[Duplicate]) -> None:
    """An exact copy may point at an article later dropped as a near copy: follow to the one kept."""
    target = {d.canonical_url: d for d in duplicates if d.kind != "url"}
    for duplicate in duplicates:
        seen = {duplicate.canonical_url}
        while duplicate.kept_url in target and duplicate.kept_url not in seen:
            seen.add(duplicate.kept_url)
            nxt = target[duplicate.kept_url]
            duplicate.kept_url, duplicate.kept_article_id = nxt.kept_url, nxt.kept_article_id


def cluster_ids(texts: list[str], settings: Settings | None = None, sources: list[str] | None = None) -> list[int]:
    """Cluster label per text (exact and near-duplicates share a label): the function benchmarks score.

    `sources` (the outlet of each text) lets boilerplate also be told by outlet, as the pipeline does with
    each article's source; without it each text is its own source, and boilerplate is what recurs across
    different stories of the batch (see `sketch`).
    """
    settings = settings or Settings()
    now = datetime.now(UTC)
    # The longest is kept: characters are cheaper to count than words.
    articles = [Article(source=sources[i] if sources else str(i), url=f"doc:{i}", canonical_url=f"doc:{i}",
                        text=t, word_count=len(t) or 1, fetched_at=now) for i, t in enumerate(texts)]
    outcome = deduplicate(articles, EmptyIndex(), settings)
    label = {a.canonical_url: i for i, a in enumerate(outcome.kept)}
    for duplicate in outcome.duplicates:
        label[duplicate.url] = label[duplicate.kept_url]
    return [label[f"doc:{i}"] for i in range(len(texts))]
