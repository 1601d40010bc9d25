"""A new kind of source is one module: its model and its fetcher, registered together (tasks.kinds). The
sources parser, the fetch stage, the flow's checks and the command line then know it, with no list of
kinds to edit anywhere else."""

from __future__ import annotations

from typing import Literal

import pytest
from warehouse_sql import query

from tasks import kinds
from tasks.fetch import FetchJob, fetch_source
from tasks.rawstore import from_document
from tasks.records import Document, FetchAttempt
from tasks.settings import get_settings
from tasks.sources import SourceBase, SourcesError, parse_sources

STORY = ("The harbour board approved the dredging plan on Tuesday after a long debate about costs, "
         "silt and the fishing season. Work starts in spring and should end before the summer ferries. ")
OTHER = ("The city library opens a reading room for night-shift workers, with coffee, newspapers in six "
         "languages and quiet desks, after a petition gathered four thousand names in a single month. ")


class NotesSource(SourceBase):
    """Articles written out in the sources list itself: the smallest kind there is."""

    kind: Literal["notes"]
    notes: list[str]


def fetch_notes(source: NotesSource, job: FetchJob) -> None:
    for number, note in enumerate(source.notes, start=1):
        document = Document(source.name, f"https://notes.example/{source.name}/{number}", text=note * 3)
        job.outcome.attempts.append(FetchAttempt(source.name, document.url, bytes=len(document.text or "")))
        job.outcome.stats.add("in")
        job.outcome.add(document, from_document(document))


@pytest.fixture
def notes_kind(monkeypatch):
    """The `notes` kind registered for one test (the registry is put back afterwards)."""
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))
    kinds.source_kinds()  # the built-in kinds first
    kinds.fetcher(NotesSource, over_http=False,
                  cli=kinds.CliOption("--note", "TEXT", "an article's text", "notes", "notes", one_source=True))(
        fetch_notes)


def test_an_unregistered_kind_is_refused_and_a_registered_one_parsed_and_fetched(notes_kind, monkeypatch):
    monkeypatch.setattr(kinds, "_KINDS", {k: v for k, v in kinds._KINDS.items() if k != "notes"})
    with pytest.raises(SourcesError, match="field 'kind'"):
        parse_sources([{"name": "memo", "kind": "notes", "notes": [STORY]}])
    monkeypatch.undo()
    notes_kind_again = kinds.fetcher(NotesSource, over_http=False)(fetch_notes)
    assert notes_kind_again is fetch_notes

    (memo,) = parse_sources([{"name": "memo", "kind": "notes", "notes": [STORY, STORY[::-1]]}])
    assert isinstance(memo, NotesSource)
    outcome = fetch_source(memo, get_settings())
    assert [d.url for d in outcome.documents] == ["https://notes.example/memo/1", "https://notes.example/memo/2"]


def test_a_kind_cannot_be_registered_twice_by_different_code(notes_kind):
    def other(source, job):  # pragma: no cover - never called
        pass

    with pytest.raises(ValueError, match="registered twice"):
        kinds.fetcher(NotesSource)(other)


@pytest.mark.usefixtures("prefect_server")
def test_a_new_kind_is_ingested_by_the_flow_and_taken_on_the_command_line(notes_kind, sqlite_url, capsys):
    from flows.cli import main

    code = main(["ingest", "--note", STORY, "--note", OTHER,
                 "--warehouse", sqlite_url])
    assert code == 0, capsys.readouterr().err
    rows = query(sqlite_url, "SELECT source, url FROM articles ORDER BY url")
    assert rows == [("notes", "https://notes.example/notes/1"), ("notes", "https://notes.example/notes/2")]
    # A local kind: its documents were judged without an HTTP status (the fetch check passed them).
    assert query(sqlite_url, "SELECT count(*) FROM quarantine") == [(0,)]
