"""News articles written for the tests in ten languages and scripts (samples/languages/<code>.txt: a title
line, then paragraphs), and HTML pages made of them."""

from __future__ import annotations

import html

from tasks.settings import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "samples" / "languages"
LANGUAGES = sorted(path.stem for path in SAMPLES.glob("*.txt"))  # ISO 639-1 codes
# Written without spaces between words: counted by segmentation, not by spaces.
UNSPACED = ("ja", "th", "zh")
RIGHT_TO_LEFT = ("ar", "he")


def sample(code: str) -> tuple[str, list[str]]:
    """(title, paragraphs) of the sample article in language `code`."""
    title, *paragraphs = [block.strip() for block in sample_text(code).split("\n\n") if block.strip()]
    return title, paragraphs


def sample_text(code: str) -> str:
    return (SAMPLES / f"{code}.txt").read_text(encoding="utf-8")


def sample_page(code: str, charset: str | None = "utf-8") -> str:
    """The sample as a news page: `<meta>` naming `charset` (none when None), navigation and footer."""
    title, paragraphs = sample(code)
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">' if charset else ""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{code}"><head>{meta}<title>{html.escape(title)}</title></head><body>'
            f'<nav><a href="/">Home</a> <a href="/local">Local</a></nav>'
            f"<article><h1>{html.escape(title)}</h1>{body}</article>"
            f"<footer>Copyright 2026</footer></body></html>")
