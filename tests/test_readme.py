"""The README is the user's manual: its quick start runs as written, and the commands and artifact keys it
names exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, build_parser, main
from tasks.settings import PROJECT_ROOT, get_settings
from tasks.warehouse import dispose_engines

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def fenced_newsflow_commands(text: str) -> list[list[str]]:
    """The `newsflow ...` lines of the text's fenced shell blocks, as argument lists (comments dropped)."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.lstrip().startswith("newsflow "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def test_every_fenced_newsflow_command_of_the_readme_parses():
    commands = fenced_newsflow_commands(README)
    assert len(commands) >= 10
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README command does not parse: newsflow {shlex.join(argv)}")


def test_the_quick_start_runs_as_written_on_the_sample_data(prefect_server, tmp_path, monkeypatch, capsys):
    """From a directory holding the samples, with the default settings, every `newsflow` command of the quick
    start succeeds, in order: relative paths and the default warehouse are read from the working directory."""
    (tmp_path / "samples").symlink_to(PROJECT_ROOT / "samples")
    monkeypatch.chdir(tmp_path)
    for name in ("NEWSFLOW_WAREHOUSE_URL", "NEWSFLOW_WAREHOUSE_SECRET", "NEWSFLOW_DATA_DIR",
                 "NEWSFLOW_DATA_DOCS_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    dispose_engines(forget=True)  # an engine cached for the same relative URL would write where an earlier test ran
    commands = fenced_newsflow_commands(section("Quick start"))
    assert [argv[0] for argv in commands] == ["ingest", "search", "quality"]
    try:
        for argv in commands:
            assert main(argv) == EXIT_OK, f"newsflow {shlex.join(argv)}"
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert (tmp_path / "data" / "warehouse.db").is_file()
    assert "ferry" in out.lower()  # the search found the sample ferry-strike story
    docs = list((tmp_path / "data" / "data-docs").glob("*/index.html"))
    assert docs, "the Data Docs were not where the README says"


def test_the_artifact_keys_the_readme_names_are_the_ones_a_run_publishes(prefect_server, tmp_path):
    """Run the flow once and compare the keys of the artifacts it published with the README's table."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.ingest import ingest_news

    named = set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", section("Monitoring").split("| artifact key |", 1)[1]
                           .split("\n\n", 1)[0]))
    assert {"run-summary", "data-docs", "quality-cleaned"} <= named
    sample = PROJECT_ROOT / "samples" / "texts" / "ferry-strike.txt"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(sample.read_text(encoding="utf-8"), encoding="utf-8")
    state = ingest_news(sources=[{"name": "t", "kind": "files", "path": str(tmp_path / "in" / "*.txt")}],
                        warehouse_url=f"sqlite:///{tmp_path / 'w.db'}", return_state=True)
    assert state.is_completed()
    run_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        published = {artifact.key for artifact in client.read_artifacts(artifact_filter=run_filter)}
    assert named <= published, f"named in the README, never published: {sorted(named - published)}"


def test_the_readme_is_a_manual_not_a_lab_notebook():
    assert len(README.splitlines()) < 400
    for doc in ("docs/design.md", "docs/benchmarks.md"):
        assert (Path(PROJECT_ROOT) / doc).is_file()
        assert doc in README
