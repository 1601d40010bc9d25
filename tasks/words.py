"""Word counts in any script.

Most scripts separate words with spaces, and a word is a run between them. Chinese, Japanese, Thai, Lao,
Khmer and Myanmar are written without spaces: a six-paragraph Chinese article is a handful of
"space-separated words". Text holding those scripts is cut into words by ICU's word break iterator (the
Unicode segmentation rules with ICU's dictionaries for these scripts, shipped inside the icu4py wheel:
offline), and its words are the segments holding a letter or digit. Korean separates words with spaces.
"""

from __future__ import annotations

import re

# Han (with its extensions and compatibility ideographs), kana (with the half-width forms), Thai, Lao,
# Myanmar and Khmer: the scripts written without spaces between words.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)


def has_unspaced_script(text: str) -> bool:
    """Whether the text holds a script written without spaces between words."""
    return not text.isascii() and _UNSPACED.search(text) is not None


def _segments(text: str) -> list[str]:
    """ICU word-break segments of `text`, which together are the text."""
    from icu4py.breakers import WordBreaker  # imported here: most texts never need it

    return list(WordBreaker(text, "und"))


def _is_word(segment: str) -> bool:
    return any(c.isalnum() for c in segment)


def split_words(text: str) -> list[str]:
    """The words: whitespace-separated tokens, or ICU word segments for text in scripts written without
    spaces (then a segment is a word when it holds a letter or digit: punctuation is no word)."""
    if not has_unspaced_script(text):
        return text.split()
    return [segment for segment in _segments(text) if _is_word(segment)]


def count_words(text: str) -> int:
    """Number of words, as `split_words` finds them."""
    if not has_unspaced_script(text):
        return len(text.split())
    return len(split_words(text))


def first_words(text: str, limit: int) -> str:
    """The text up to the end of its `limit`-th word (whitespace runs as one space outside unspaced scripts)."""
    if not has_unspaced_script(text):
        return " ".join(text.split()[:limit])
    kept, words = [], 0
    for segment in _segments(text):
        if _is_word(segment):
            if words == limit:
                break
            words += 1
        kept.append(segment)
    return " ".join("".join(kept).split())
