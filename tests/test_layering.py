"""The package's layering: no module imports another that imports it back, directly or through others
(type-only imports included), so each module can be read, tested and changed from the bottom up."""

from __future__ import annotations

import ast
from pathlib import Path

from tasks.settings import PROJECT_ROOT

PACKAGES = ("tasks", "flows")


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports (`from tasks import x` counts as `tasks.x`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in PACKAGES:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif node.module.split(".")[0] in PACKAGES:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES)
    return found


def import_graph(root: Path = PROJECT_ROOT) -> dict[str, set[str]]:
    modules = {f"{package}.{path.stem}": path for package in PACKAGES for path in (root / package).glob("*.py")}
    return {name: project_imports(path) & modules.keys() for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_third_module():
    graph = {"tasks.a": {"tasks.b"}, "tasks.b": {"tasks.c"}, "tasks.c": {"tasks.a"}, "tasks.d": {"tasks.a"}}
    assert cycles(graph) == [["tasks.a", "tasks.b", "tasks.c"]]


def test_type_only_imports_count(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "flows").mkdir()
    (tmp_path / "tasks" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                             "    from tasks.b import B\n", encoding="utf-8")
    (tmp_path / "tasks" / "b.py").write_text("from tasks import a\n", encoding="utf-8")
    assert cycles(import_graph(tmp_path)) == [["tasks.a", "tasks.b"]]


def test_no_module_of_the_project_imports_itself_back():
    graph = import_graph()
    assert len(graph) > 40  # the real package was read
    assert cycles(graph) == []
