"""Configuration is parsed within bounds: a YAML alias bomb, a huge or deeply nested sources list is
refused with one line (exit 3) before anything walks it, from a file, a flow parameter or a Variable."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.sources import SourcesError, load_sources_file, parse_sources, resolve_sources


def alias_bomb(levels: int = 8, width: int = 9) -> str:
    """445 bytes that expand to width**levels values (43 million at 8 x 9)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"sources: *a{levels}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_file_is_refused_before_it_is_walked(tmp_path):
    bomb = tmp_path / "sources.yaml"
    bomb.write_text(alias_bomb())
    with pytest.raises(SourcesError, match="too big once expanded"):
        load_sources_file(bomb)


def test_a_shared_structure_given_as_a_parameter_is_refused_too():
    level = [{"name": "a", "kind": "urls", "urls": ["http://example.org/"]}]
    for _ in range(8):
        level = [level] * 9  # one list, referenced 9 times: what a YAML alias gives (9**8 in all)
    with pytest.raises(SourcesError, match="sources parameter: too big once expanded"):
        resolve_sources(None, level)


def test_deep_nesting_and_huge_values_are_refused(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("sources: " + "[" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(SourcesError, match="nested"):
        load_sources_file(deep)
    with pytest.raises(SourcesError, match="characters"):
        parse_sources([{"name": "a", "kind": "files", "path": "x" * 6_000_000}])


def test_ordinary_anchors_still_work(tmp_path):
    file = tmp_path / "sources.yaml"
    file.write_text("common: &common {kind: rss, max_items: 5}\n"
                    "sources:\n  - {<<: *common, name: a, url: 'https://a.example/feed'}\n"
                    "  - {<<: *common, name: b, url: 'https://b.example/feed'}\n")
    assert [s.max_items for s in load_sources_file(file)] == [5, 5]


def _limit_memory() -> None:
    limit = 1 << 30  # 1 GB of address space: the old expansion grew past 4 GB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_the_command_refuses_a_bomb_with_exit_3_and_one_line(tmp_path):
    bomb = tmp_path / "sources.yaml"
    bomb.write_text(alias_bomb())
    command = Path(sys.executable).parent / "newsflow"
    result = subprocess.run([command, "ingest", "--sources", str(bomb), "--warehouse",
                             f"sqlite:///{tmp_path / 'w.db'}"], capture_output=True, text=True, timeout=120,
                            preexec_fn=_limit_memory)
    assert result.returncode == 3, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "too big once expanded" in lines[0]
