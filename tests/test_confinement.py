"""`files` and `warc` paths are confined to the allowed roots (the sources file's folder, the working
directory, NEWSFLOW_FILES_ROOTS), after `..` and symlinks: a path outside is a failed fetch, never read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from warehouse_sql import query

from tasks.fetch import fetch_source
from tasks.localfiles import with_sources_folder
from tasks.settings import Settings
from tasks.sources import load_sources_file, parse_sources

TEXT = "A story long enough to be read as an article by the pipeline. " * 8


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """work/ (the working directory), news/ (a sources file and its texts), secret/ (elsewhere)."""
    for folder in ("work", "news", "secret"):
        (tmp_path / folder).mkdir()
    (tmp_path / "news" / "a.txt").write_text(TEXT)
    (tmp_path / "secret" / "key.txt").write_text("the worker's secret " * 20)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def _fetch(entry: dict, sources_file: Path | None = None, roots: str = ""):
    settings = with_sources_folder(Settings(files_roots=roots), sources_file)
    if sources_file is not None:
        sources_file.write_text("sources:\n  - " + repr(entry).replace("'", '"') + "\n")
        spec = load_sources_file(sources_file)[0]
    else:
        spec = parse_sources([entry])[0]
    return fetch_source(spec, settings)


def test_dot_dot_out_of_the_sources_folder_is_refused_and_its_own_files_read(layout):
    escape = _fetch({"name": "s", "kind": "files", "path": "../secret/*.txt"}, layout / "news" / "sources.yaml")
    own = _fetch({"name": "s", "kind": "files", "path": "*.txt"}, layout / "news" / "sources.yaml")
    assert not escape.documents
    (attempt,) = escape.attempts
    assert attempt.error_kind == "outside_roots" and "NEWSFLOW_FILES_ROOTS" in attempt.error
    assert escape.rejections[0].payload["error_kind"] == "outside_roots"
    assert [Path(d.url).name for d in own.documents] == ["a.txt"]


def test_a_symlink_to_a_file_outside_is_refused_the_others_read(layout):
    (layout / "news" / "link.txt").symlink_to(layout / "secret" / "key.txt")
    outcome = _fetch({"name": "s", "kind": "files", "path": str(layout / "news" / "*.txt")},
                     roots=str(layout / "news"))
    assert [Path(d.url).name for d in outcome.documents] == ["a.txt"]
    refused = [a for a in outcome.attempts if a.error_kind == "outside_roots"]
    assert [Path(a.url).name for a in refused] == ["link.txt"]
    assert all("secret" not in (d.text or "") for d in outcome.documents)


def test_a_parameter_reaches_only_the_working_directory_and_the_configured_roots(layout):
    entry = {"name": "s", "kind": "warc", "path": str(layout / "secret" / "*.warc.gz")}
    (layout / "secret" / "a.warc.gz").write_bytes(b"not a WARC file")
    refused = _fetch(entry)
    assert [a.error_kind for a in refused.attempts] == ["outside_roots"]
    allowed = _fetch(entry, roots=os.pathsep.join(["/nonexistent", str(layout / "secret")]))
    assert [a.error_kind for a in allowed.attempts] == ["bad_warc"]  # read, this time


@pytest.mark.usefixtures("prefect_server")
def test_a_flow_parameter_cannot_read_the_workers_files(sqlite_url):
    from flows.ingest import ingest_news
    from tasks.sources import SourceUnavailable

    with pytest.raises(SourceUnavailable, match="outside the allowed folders"):  # loud, not "nothing new"
        ingest_news(sources=[{"name": "etc", "kind": "files", "path": "/etc/host*"}], warehouse_url=sqlite_url)
    rows = query(sqlite_url, "SELECT url, error_kind FROM fetches")
    assert rows and {kind for _, kind in rows} == {"outside_roots"}
    assert query(sqlite_url, "SELECT count(*) FROM articles") == [(0,)]
