"""Text normalisation shared by the clean and dedupe stages."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

import ftfy

# Zero-width and other invisible characters that survive NFC but break comparisons.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# Of those, stored text loses only the ones that carry nothing: soft hyphens, zero-width spaces, word
# joiners, byte-order marks. Joiners (ZWNJ, ZWJ) spell Persian and Indic words and emoji, and bidi
# marks and embeddings (LRM, RLM, LRE ... PDF, LRI ... PDI) order right-to-left text with numbers and
# Latin words in it: removing them changes the text a reader sees.
_INVISIBLE_STORED = re.compile("[\u00ad\u200b\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
                         "\u00ab": '"', "\u00bb": '"',
                         "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
                         "\u2015": "-", "\u2212": "-"})
# Unicode line breaks (and the one space NFKC keeps) become ASCII: byte-level tokenisers see only ASCII whitespace.
_FOLD_CHARS = {**{chr(c): v for c, v in _QUOTES.items()}, "\x85": "\n", "\u2028": "\n", "\u2029": "\n",
               "\u1680": " "}
_INVISIBLE_OR_FOLDED = re.compile(f"{_INVISIBLE.pattern}|[{''.join(_FOLD_CHARS)}]")


def _fold_char(match: re.Match[str]) -> str:
    return _FOLD_CHARS.get(match.group(), "")


# Full-width characters stay as written: "，" and "（）" are Chinese and Japanese punctuation, not
# mis-encoded ASCII (ftfy's fix_character_width would turn them into "," and "()").
_FTFY_CONFIG = ftfy.TextFixerConfig(normalization="NFC", uncurl_quotes=False, fix_character_width=False,
                                    explain=False)
# What ftfy can change: anything but printable ASCII, tabs and newlines, or '&' (HTML entities). A line of
# printable ASCII without '&' cannot hold mojibake, control characters, odd line breaks or entities.
_FTFY_WORK = re.compile(r"[^\t\n\x20-\x25\x27-\x7e]")


def repair_unicode(text: str) -> str:
    """`ftfy.fix_text(text, _FTFY_CONFIG)`, without handing ftfy the lines it would return unchanged
    (most lines of English text; ftfy costs ~50 µs a line even then).

    Same segments as fix_text (lines, or max_decode_length pieces) and the same HTML-unescaping rule
    (from the first segment holding '<' on, entities are left alone).
    """
    if not _FTFY_WORK.search(text):
        return text
    config = _FTFY_CONFIG
    out = []
    position = 0
    while position < len(text):
        end = text.find("\n", position) + 1 or len(text)
        end = min(end, position + config.max_decode_length)
        segment = text[position:end]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        if _FTFY_WORK.search(segment):
            segment = ftfy.fix_and_explain(segment, config)[0]
        out.append(segment)
        position = end
    return "".join(out)


def normalize_text(text: str) -> str:
    """Readable normalisation for stored text: mojibake repaired, NFC, no zero-width spaces, tidy spaces.

    Paragraph breaks (blank lines) are kept; runs of spaces and tabs inside a line collapse to one.
    Any script comes out as written apart from whitespace: joiners and bidi controls stay.
    """
    text = repair_unicode(text)
    text = _INVISIBLE_STORED.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def fold_lines(text: str) -> str:
    """Aggressive folding (entities, NFKC, no invisibles, quotes and dashes, case) keeping line breaks.

    Hot path of deduplication: the Unicode steps are skipped for ASCII text, where they change nothing,
    and quotes and dashes are folded by a regex (str.translate with a dict is slow on non-ASCII text).
    """
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE_OR_FOLDED.sub(_fold_char, text)
    return text.casefold()


def fold_lines_utf8(text: str) -> bytes:
    """`fold_lines(text)` as UTF-8: the same bytes, sooner for ASCII text (whose case bytes.lower folds)."""
    if text.isascii() and "&" not in text:
        return text.encode("ascii").lower()
    return fold_lines(text).encode("utf-8")


def fold_for_comparison(text: str) -> str:
    """Aggressive folding for equality tests: entities, NFKC, quotes and dashes, case, all whitespace."""
    return " ".join(fold_lines(text).split())


def content_hash(text: str) -> str:
    """Hash of the folded text: equal for copies that differ only in encoding, case or spacing."""
    return hashlib.sha256(fold_for_comparison(text).encode("utf-8")).hexdigest()


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of a text: blank-line separated blocks, or lines when there are no blank lines."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    if len(blocks) <= 1:
        blocks = [line.strip() for line in text.split("\n") if line.strip()]
    return blocks
