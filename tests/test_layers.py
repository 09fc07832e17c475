"""The layering of the top-level packages (docs/architecture.md), checked over every import in
the source, function-level imports included: each package imports only the packages below it,
so no two packages import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# package -> the project's packages it may import. Top to bottom: the command line and build,
# the interfaces, what every interface shares, the engine. `seeds` (the sample data generator)
# stands apart: only the command line and build use it.
ALLOWED = {
    "northstar": {"api", "core", "metrics", "seeds"},
    "api": {"core", "metrics"},
    "core": {"metrics"},
    "metrics": set(),
    "seeds": set(),
}
PROJECT = set(ALLOWED) | {"tests", "bench", "scripts"}


def imports_of(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import of a project package in `path`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT:
                found.add((top, node.lineno))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_below_it(package):
    wrong = []
    for path in sorted((REPO / package).rglob("*.py")):
        for imported, line in imports_of(path):
            if imported != package and imported not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    assert not wrong, f"{package} may import {sorted(ALLOWED[package]) or 'none of the project'}:\n" + "\n".join(wrong)


def test_no_two_packages_import_each_other():
    graph = {p: {i for path in (REPO / p).rglob("*.py") for i, _ in imports_of(path)} - {p} for p in ALLOWED}
    cycles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, set())})
    assert not cycles, cycles


def test_the_checker_sees_function_level_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from api.main import create_app\n    import northstar.cli\n")
    assert imports_of(sample) == {("api", 2), ("northstar", 3)}
