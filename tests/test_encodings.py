"""Pages in legacy encodings are decoded by their own charset (header, `<meta>`, byte-order mark, detection),
served over HTTP without a charset header or read as local files, and cleaned into proper text."""

from __future__ import annotations

import pytest
from crawl_server import CrawlServer, html
from language_samples import sample, sample_page, sample_text

from tasks.cleaners import clean_documents
from tasks.fetch import fetch_source
from tasks.records import Article, Document
from tasks.settings import PROJECT_ROOT, Settings
from tasks.sources import FilesSource, UrlsSource

# A legacy encoding of each script, as pages in those languages are still served.
ENCODED = {"ko": "euc-kr", "ja": "shift_jis", "zh": "gb18030", "ru": "windows-1251"}
SETTINGS = Settings(clean_timeout_seconds=0, host_delay_seconds=0, max_retries=0)


def legacy_page(code: str, with_meta: bool) -> bytes:
    encoding = ENCODED[code]
    page = sample_page(code, encoding if with_meta else None).encode(encoding)
    assert (b"charset" in page) == with_meta
    return page


@pytest.fixture(scope="module")
def validator():
    from tasks.validate import Validator

    return Validator(PROJECT_ROOT / "expectations")


def assert_proper_text(articles: list[Article], validator) -> None:
    from tasks.frames import articles_frame

    by_code = {a.url.rsplit("/", 1)[1].split(".")[0]: a for a in articles}
    assert sorted(by_code) == sorted(ENCODED)
    for code, article in by_code.items():
        title, paragraphs = sample(code)
        assert article.title == " ".join(title.split()), code
        assert article.text == "\n\n".join(paragraphs), code
        assert article.language == code
        assert "\ufffd" not in article.text
    verdict = validator.validate("clean", {"records": articles_frame(articles)})
    assert verdict.success, verdict.failed_rows


@pytest.mark.parametrize("with_meta", [True, False], ids=["meta-charset", "no-declaration"])
def test_legacy_encoded_pages_served_without_a_charset_header_come_out_as_text(with_meta, validator):
    routes = {f"/{code}.html": html(legacy_page(code, with_meta), charset=None) for code in ENCODED}
    with CrawlServer(routes) as server:
        source = UrlsSource(kind="urls", name="legacy", allow_private_network=True,
                            urls=[server.url(path) for path in routes])
        fetched = fetch_source(source, SETTINGS)
    assert not fetched.rejections and all(server.hits[path] == 1 for path in routes)
    cleaned = clean_documents(fetched.documents, SETTINGS)
    assert not cleaned.rejections
    assert_proper_text(cleaned.articles, validator)


@pytest.mark.parametrize("with_meta", [True, False], ids=["meta-charset", "no-declaration"])
def test_legacy_encoded_html_files_come_out_as_text(tmp_path, with_meta, validator):
    for code in ENCODED:
        (tmp_path / f"{code}.html").write_bytes(legacy_page(code, with_meta))
    fetched = fetch_source(FilesSource(kind="files", name="inbox", path=str(tmp_path / "*.html")), SETTINGS)
    assert not fetched.rejections and len(fetched.documents) == len(ENCODED)
    cleaned = clean_documents(fetched.documents, SETTINGS)
    assert not cleaned.rejections
    assert_proper_text(cleaned.articles, validator)


def test_legacy_encoded_text_files_and_page_bytes_come_out_as_text(tmp_path, validator):
    for code, encoding in ENCODED.items():
        (tmp_path / f"{code}.txt").write_bytes(sample_text(code).encode(encoding))  # nothing declares it
    fetched = fetch_source(FilesSource(kind="files", name="inbox", path=str(tmp_path / "*.txt")), SETTINGS)
    assert not fetched.rejections and len(fetched.documents) == len(ENCODED)
    cleaned = clean_documents(fetched.documents, SETTINGS)
    assert not cleaned.rejections
    assert_proper_text(cleaned.articles, validator)
    # A caller handing the clean stage a page's bytes gets the same decoding.
    pages = [Document("inbox", f"https://news.example/{code}.html", html=legacy_page(code, with_meta=False))
             for code in ENCODED]
    assert_proper_text(clean_documents(pages, SETTINGS).articles, validator)


def test_a_byte_order_mark_wins_over_a_wrong_header_and_labels_decode_as_browsers_do():
    title, paragraphs = sample("ru")
    russian = sample_page("ru", charset=None)
    english = ("<html><head><title>Prices on the quay</title></head><body><article><h1>Prices on the quay"
               "</h1><p>" + " ".join(["Fish cost \u20ac5 a kilo, the \u201cbest price\u201d in years,"
                                      " said the harbour master."] * 8) + "</p></article></body></html>")
    routes = {
        # UTF-16 with its byte-order mark, under a header naming another charset: the mark decides.
        "/utf16.html": html("\ufeff".encode("utf-16-le") + russian.encode("utf-16-le"), charset="windows-1252"),
        "/utf8-bom.html": html(b"\xef\xbb\xbf" + russian.encode("utf-8"), charset=None),
        # Labelled ISO-8859-1, holding windows-1252's euro sign and curly quotes (what browsers assume).
        "/latin1.html": html(english.encode("cp1252"), charset="iso-8859-1"),
    }
    with CrawlServer(routes) as server:
        source = UrlsSource(kind="urls", name="marks", allow_private_network=True,
                            urls=[server.url(path) for path in routes])
        fetched = fetch_source(source, SETTINGS)
    articles = {a.url.rsplit("/", 1)[1]: a for a in clean_documents(fetched.documents, SETTINGS).articles}
    for name in ("utf16.html", "utf8-bom.html"):
        assert articles[name].title == title and articles[name].text == "\n\n".join(paragraphs)
    assert "Fish cost \u20ac5 a kilo, the \u201cbest price\u201d in years" in articles["latin1.html"].text
