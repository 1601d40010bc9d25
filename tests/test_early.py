"""Short runs are short: what a command-line run needs starts while Prefect's temporary server boots, and
only what it needs (Great Expectations and cleaning processes for local files; as many as they keep busy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flows.early import cleaners_for, local_documents, start_early
from tasks.settings import PROJECT_ROOT, Settings
from tasks.sources import parse_sources

BIN = Path(sys.executable).parent
TEXTS = PROJECT_ROOT / "samples" / "texts"


def sources(*entries: dict) -> list:
    return parse_sources([{"name": f"s{n}", **entry} for n, entry in enumerate(entries)])


def test_a_few_text_files_need_one_cleaning_process_feeds_and_archives_one_per_core(tmp_path):
    settings = Settings(cpu_workers=2, cpu_chunk_size=100)
    two = sources({"kind": "files", "path": str(TEXTS / "ferry-strike*.txt")})
    assert local_documents(two) == (2, True)
    assert cleaners_for(two, settings) == 1
    assert cleaners_for(sources({"kind": "files", "path": str(TEXTS / "*.jsonl")}), settings) == 2  # records
    assert cleaners_for(two + sources({"kind": "rss", "url": "https://example.org/feed.xml"}), settings) == 2
    many = tmp_path / "many"
    many.mkdir()
    for n in range(150):
        (many / f"{n}.txt").write_text("x")
    assert cleaners_for(sources({"kind": "files", "path": str(many / "*.txt")}), settings) == 2
    assert local_documents(sources({"kind": "files", "path": str(tmp_path / "none" / "*.txt")})) == (0, True)


def test_nothing_starts_for_a_run_of_feeds_against_a_running_server(monkeypatch):
    import flows.early

    started = []
    monkeypatch.setattr(flows.early, "_thread", lambda target, name: started.append(name))
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        early = start_early(sources({"kind": "rss", "url": "https://example.org/feed.xml"}), Settings())
    assert started == [] and early.server is None


def test_a_command_line_run_boots_one_temporary_server_early_and_uses_it(tmp_path):
    """No PREFECT_API_URL: the run starts Prefect's temporary server itself, before its flow, and the flow's
    client finds that one running (one 'Starting temporary server' line, not two)."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "NEWSFLOW_DATA_DIR": str(tmp_path / "data")}
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", "--files", str(TEXTS / "ferry-strike*.txt"),
         "--warehouse", f"sqlite:///{tmp_path / 'w.db'}"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count("Starting temporary server") == 1, output[-3000:]
    assert "stories: 1 new" in result.stdout  # the two ferry-strike texts: one story


def test_the_early_start_warms_exactly_the_cleaners_the_run_keeps_busy_and_hands_them_to_it(tmp_path,
                                                                                             monkeypatch):
    import flows.early
    from flows.resources import RunResources

    monkeypatch.setattr(flows.early, "_thread", lambda target, name: None)  # no server, no import
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.txt").write_text("y")
    settings = Settings(cpu_workers=2, clean_timeout_seconds=30)
    with start_early(sources({"kind": "files", "path": str(tmp_path / "*.txt")}), settings) as early:
        [cleaner] = early.cleaners.spare
        with RunResources(settings) as run:  # the run started within the block cleans with them ...
            assert run.cleaners is early.cleaners
        assert early.cleaners.spare == [cleaner]  # ... and leaves them to the early start to end
        cleaner.warm_quietly()
        assert cleaner.worker_pid is not None
    assert early.cleaners.spare == [] and cleaner.worker_pid is None  # ended with the block
    with RunResources(settings) as run:  # outside it, a run opens (and closes) a pool of its own
        assert run.cleaners is not early.cleaners
