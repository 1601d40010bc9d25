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


# --- exact messages and bounds (each would go unnoticed with a changed message, bound or branch) ---------


def _error(entries, origin="sources") -> str:
    with pytest.raises(SourcesError) as error:
        parse_sources(entries, origin=origin)
    return str(error.value)


@pytest.mark.parametrize(("entries", "message"), [
    ([{"name": "a", "kind": "files"}], "x.yaml: source #0 (a), field 'path': Field required"),
    (["just a string"], "x.yaml: source #0 (?), field 'kind': "
                        "Input should be a valid dictionary or object to extract fields from"),
    ([{"kind": "files", "path": "p"}], "x.yaml: source #0 (?), field 'name': Field required"),
    ([{"name": "u", "kind": "urls", "urls": ["https://a.example/", "ftp://b"]}],
     "x.yaml: source #0 (u), field 'urls': Value error, not an http(s) URL: 'ftp://b'"),
    ([{"name": "u", "kind": "rss", "url": "https://"}],
     "x.yaml: source #0 (u), field 'url': Value error, not an http(s) URL: 'https://'"),
    ([{"name": "u", "kind": "rss", "url": "https://a.example/", "allowed_hosts": ["a.example", 7]}],
     "x.yaml: source #0 (u), field 'allowed_hosts.1': Input should be a valid string"),
    ([{"name": "u", "kind": "rss", "url": "https://a.example/", "max_items": 0}],
     "x.yaml: source #0 (u), field 'max_items': Input should be greater than 0"),
    ([], "x.yaml: expected a non-empty list of sources"),
    ({"name": "a", "kind": "files", "path": "p"}, "x.yaml: expected a non-empty list of sources"),
    ([{"name": n, "kind": "files", "path": "p"} for n in ("b", "a", "c", "a", "b")],
     "x.yaml: source names must be unique, repeated: a, b"),
])
def test_error_messages_are_exact(entries, message):
    assert _error(entries, origin="x.yaml") == message


def test_the_default_origin_of_a_list_is_sources():
    assert _error([]) == "sources: expected a non-empty list of sources"


@pytest.mark.parametrize(("value", "seconds"), [
    ("45s", 45), ("30m", 1800), ("6h", 21600), ("2d", 172800), ("1.5H", 5400), (" 10 M ", 600), (90, 90),
])
def test_refresh_intervals_take_units(value, seconds):
    (source,) = parse_sources([{"name": "w", "kind": "rss", "url": "https://a.example/", "refresh_interval": value}])
    assert source.refresh_interval.total_seconds() == seconds


def test_refresh_interval_in_unknown_units_is_refused():
    assert "field 'refresh_interval'" in _error(
        [{"name": "w", "kind": "rss", "url": "https://a.example/", "refresh_interval": "10 weeks"}])


def test_each_kind_says_where_it_is_read_from_first(tmp_path):
    files, rss, urls, sitemap = parse_sources([
        {"name": "f", "kind": "files", "path": "/abs/*.txt"},
        {"name": "r", "kind": "rss", "url": "https://r.example/feed"},
        {"name": "u", "kind": "urls", "urls": ["https://u.example/1", "https://u.example/2"]},
        {"name": "s", "kind": "sitemap", "url": "https://s.example/sitemap.xml"},
    ])
    assert [s.first_url() for s in (files, rss, urls, sitemap)] == [
        None, "https://r.example/feed", "https://u.example/1", "https://s.example/sitemap.xml"]
    files.relative_to(tmp_path)
    rss.relative_to(tmp_path)
    assert files.path == "/abs/*.txt"  # an absolute path stays


def test_environment_references_in_nested_values_and_empty_defaults(monkeypatch):
    from tasks.sources import expand_env

    monkeypatch.setenv("NEWSFLOW_TEST_HOST", "set.example")
    monkeypatch.delenv("NEWSFLOW_TEST_UNSET", raising=False)
    assert expand_env({"a": ["${NEWSFLOW_TEST_HOST:-default.example}", {"b": "x${NEWSFLOW_TEST_UNSET:-}y"}],
                       "n": 3, "t": True}) == {"a": ["set.example", {"b": "xy"}], "n": 3, "t": True}
    with pytest.raises(SourcesError) as error:
        expand_env("${NEWSFLOW_TEST_UNSET}")
    assert str(error.value) == "environment variable NEWSFLOW_TEST_UNSET is not set (used in the sources)"


def test_check_size_bounds_are_exact():
    from tasks.sources import MAX_TEXT, check_size

    check_size([1, 2], "o", max_nodes=3)  # the list and its two values
    with pytest.raises(SourcesError) as error:
        check_size([1, 2], "o", max_nodes=2)
    assert str(error.value) == "o: too big once expanded (over 2 values; YAML aliases repeating one another?)"
    check_size({"k": 1}, "o", max_nodes=3)  # a mapping counts its keys too
    with pytest.raises(SourcesError, match="over 2 values"):
        check_size({"k": 1}, "o", max_nodes=2)
    check_size([[[]]], "o", max_depth=3)
    with pytest.raises(SourcesError) as error:
        check_size([[[]]], "o", max_depth=2)
    assert str(error.value) == "o: nested deeper than 2 levels"
    check_size({"a": {"b": 1}}, "o", max_depth=3)
    with pytest.raises(SourcesError, match="nested deeper than 2"):
        check_size({"a": ({"b": 1},)}, "o", max_depth=2)  # mappings and tuples nest too
    check_size(["x" * MAX_TEXT, b"y" * MAX_TEXT], "o")
    with pytest.raises(SourcesError) as error:
        check_size(["x" * (MAX_TEXT + 1)], "o")
    assert str(error.value) == "o: a value of 5,000,001 characters (at most 5,000,000)"
    with pytest.raises(SourcesError, match="a value of 5,000,001"):
        check_size([b"y" * (MAX_TEXT + 1)], "o")


def test_yaml_nesting_is_bounded_while_it_is_read(monkeypatch):
    from tasks import sources
    from tasks.sources import MAX_TEXT, safe_yaml

    assert safe_yaml("[" * 20 + "]" * 20, "o") is not None
    with pytest.raises(SourcesError) as error:
        safe_yaml("[" * 21 + "]" * 21, "o")
    assert str(error.value) == "o: nested deeper than 20 levels"
    with pytest.raises(SourcesError) as error:
        safe_yaml("a: [", "o")
    assert str(error.value).startswith("o: not valid YAML: while parsing a flow node")
    with pytest.raises(SourcesError) as error:
        safe_yaml("#" * (MAX_TEXT + 1), "o")
    assert str(error.value) == "o: 5,000,001 characters, more than a sources list needs (at most 5,000,000)"
    monkeypatch.setattr(sources, "MAX_TEXT", 100)  # the bound exactly (parsing 5 MB of YAML takes seconds)
    assert safe_yaml("#" * 100, "o") is None
    with pytest.raises(SourcesError, match="101 characters"):
        safe_yaml("#" * 101, "o")


def test_sources_files_that_cannot_be_read_say_why(tmp_path):
    with pytest.raises(SourcesError) as error:
        load_sources_file(tmp_path)  # a folder
    assert str(error.value).startswith(f"{tmp_path}: unreadable: [Errno 21] Is a directory")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"sources: [{name: caf\xe9}]")
    with pytest.raises(SourcesError) as error:
        load_sources_file(latin)
    assert str(error.value).startswith(f"{latin}: unreadable: 'utf-8' codec can't decode byte 0xe9")
    mapping = tmp_path / "feeds.yaml"
    mapping.write_text("feeds: []\n")
    with pytest.raises(SourcesError) as error:
        load_sources_file(mapping)
    assert str(error.value) == f"{mapping}: expected a mapping with a 'sources:' list"
    with pytest.raises(SourcesError) as error:
        load_sources_file(tmp_path / "nope.yaml")
    assert str(error.value) == f"{tmp_path / 'nope.yaml'}: no such sources file"
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * 6_000_000)
    with pytest.raises(SourcesError) as error:
        load_sources_file(huge)
    assert str(error.value).startswith(f"{huge}: 5,000,001 characters")  # read no further than that
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - {name: a, kind: files}\n")
    with pytest.raises(SourcesError) as error:
        load_sources_file(bad)
    assert str(error.value) == f"{bad}: source #0 (a), field 'path': Field required"  # the file is the origin


def test_a_sources_file_and_a_list_are_taken_together(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - {name: a, kind: files, path: in/a.txt}\n")
    inline = [{"name": "b", "kind": "files", "path": "/b.txt"}]
    assert [(s.name, s.path) for s in resolve_sources(str(path), inline)] == [
        ("a", str(tmp_path / "in/a.txt")), ("b", "/b.txt")]
    assert [s.name for s in resolve_sources(str(path))] == ["a"]
    assert [s.name for s in resolve_sources(None, inline)] == ["b"]
    with pytest.raises(SourcesError) as error:
        resolve_sources(str(path), [{"name": "a", "kind": "files", "path": "x"}])
    assert str(error.value) == "source names must be unique across the sources file and the sources list"
    with pytest.raises(SourcesError) as error:
        resolve_sources(None, [{"name": "a", "kind": "files"}])
    assert str(error.value) == "sources parameter: source #0 (a), field 'path': Field required"
    with pytest.raises(SourcesError) as error:
        resolve_sources("", [])
    assert str(error.value) == "no sources given: pass a sources file or a list of sources"


def test_nesting_behind_siblings_is_counted_too(tmp_path):
    from tasks.sources import safe_yaml

    # Each level opens with a value before the next list: the depth must come back down by one per node.
    text = "[x, " * 2000 + "]" * 2000
    with pytest.raises(SourcesError) as error:
        safe_yaml(text, "o")
    assert str(error.value) == "o: nested deeper than 20 levels"


def test_an_alias_bomb_in_a_file_is_named_after_the_file(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 8)] + ["sources: *a7"]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourcesError) as error:
        load_sources_file(bomb)
    assert str(error.value) == (f"{bomb}: too big once expanded (over 100,000 values; YAML aliases repeating one "
                                "another?)")


def test_a_list_given_directly_is_bounded_too():
    level: list = [{"name": "a", "kind": "files", "path": "x"}]
    for _ in range(6):
        level = [level] * 9  # one list referenced nine times, as a YAML alias gives: 9**6 entries
    with pytest.raises(SourcesError) as error:
        parse_sources(level, origin="param")
    assert str(error.value).startswith("param: too big once expanded")
