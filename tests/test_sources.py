"""The sources file is checked before anything is fetched; errors name the entry and the field."""

from __future__ import annotations

import pytest

from tasks.sources import FilesSource, RssSource, SourcesError, load_sources_file, parse_sources, resolve_sources


def test_valid_entries_of_every_kind(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - {name: seeds, kind: files, path: 'in/*.txt'}\n"
        "  - {name: wire, kind: rss, url: 'https://example.org/feed.xml', max_items: 20}\n"
        "  - {name: picks, kind: urls, urls: ['https://example.org/a', 'http://127.0.0.1:1/b'],"
        " allow_private_network: true}\n"
    )
    seeds, wire, picks = load_sources_file(path)
    assert isinstance(seeds, FilesSource) and seeds.path == str(tmp_path / "in/*.txt")  # relative to the file
    assert isinstance(wire, RssSource) and wire.max_items == 20 and not wire.allow_private_network
    assert picks.urls[1] == "http://127.0.0.1:1/b" and picks.allow_private_network


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "a", "kind": "files"}, "source #1 (a), field 'path'"),
        ({"name": "w", "kind": "rss", "url": "ftp://example.org/feed"}, "source #1 (w), field 'url'"),
        ({"name": "w", "kind": "blog", "url": "https://example.org"}, "source #1 (w), field 'kind'"),
        ({"name": "p", "kind": "urls", "urls": []}, "source #1 (p), field 'urls'"),
        ({"name": "x", "kind": "files", "path": "a", "pth": "b"}, "source #1 (x), field 'pth'"),
        ({"name": "bad name", "kind": "files", "path": "a"}, "source #1 (bad name), field 'name'"),
    ],
)
def test_errors_name_the_entry_and_the_field(entry, expected):
    good = {"name": "ok", "kind": "files", "path": "x"}
    with pytest.raises(SourcesError) as error:
        parse_sources([good, entry])
    assert expected in str(error.value)


def test_names_must_be_unique():
    entry = {"name": "dup", "kind": "files", "path": "x"}
    with pytest.raises(SourcesError, match=r"unique.*dup"):
        parse_sources([entry, dict(entry)])


def test_environment_references_are_expanded(monkeypatch):
    monkeypatch.setenv("FEED_HOST", "news.example.org")
    (source,) = parse_sources([{"name": "w", "kind": "rss", "url": "https://${FEED_HOST}/${FEED_PATH:-rss}"}])
    assert source.url == "https://news.example.org/rss"
    with pytest.raises(SourcesError, match="NOT_SET_ANYWHERE"):
        parse_sources([{"name": "w", "kind": "rss", "url": "https://${NOT_SET_ANYWHERE}/"}])


@pytest.mark.parametrize("content", ["sources: [", "just a string", "feeds: []"])
def test_unreadable_files_are_rejected(tmp_path, content):
    path = tmp_path / "sources.yaml"
    path.write_text(content)
    with pytest.raises(SourcesError, match=str(path)):
        load_sources_file(path)


def test_missing_file_and_no_sources():
    with pytest.raises(SourcesError, match="no such sources file"):
        resolve_sources("does/not/exist.yaml")
    with pytest.raises(SourcesError, match="no sources given"):
        resolve_sources(None, None)
