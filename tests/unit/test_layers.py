"""The layers a newcomer can see (docs/architecture.md, "Layers"): imports point one way.

The import graph of the project's own modules is read from the source with ``ast`` (nothing is
imported). An edge is an ``import`` or ``from ... import`` of a project module:

- at module level or inside a function alike (a lazy import runs too, only later), for both
  rules: a cycle through a function's import is still two modules that need each other;
- under ``if TYPE_CHECKING:`` it counts for the layer rule (a type is a dependency) but not
  for cycles (it never runs).

Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those implicit edges are
left out (a package's ``__init__`` importing its own modules is not a cycle).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = ("schemas", "detectors", "pipeline", "producers", "stream_app", "bench", "tests")
"""The top-level packages, lowest first: each may import only those before it (and itself)."""

CLI = "stream_app.cli"
LOCAL = "stream_app.local"
"""Local development (services without Docker, the demo), apart from the product."""
CLI_SHARED = "stream_app.cli.console"
"""What the CLI commands share; a command imports no other command."""


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    runs: bool  # False under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        path = _modules()[self.source].relative_to(ROOT)
        return f"{path}:{self.line}: {self.source} -> {self.target}"


@cache
def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages."""
    modules = {}
    for package in LAYERS:
        for file in sorted((ROOT / package).rglob("*.py")):
            parts = file.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = file
    return modules


def _resolve(name: str) -> str | None:
    """The project module that importing ``name`` names: itself, or the longest prefix that is
    a module (``pkg.mod.attr`` -> ``pkg.mod``); None outside the project."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in _modules():
            return ".".join(parts)
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_in(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """The imports of project modules in ``source``, the code of ``module``."""
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, runs: bool) -> Iterator[Import]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                yield from visit(statement, runs=False)
            for statement in node.orelse:
                yield from visit(statement, runs)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _resolve(alias.name)) is not None:
                    yield Import(module, target, node.lineno, runs)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}") or _resolve(base)
                if target is not None:
                    yield Import(module, target, node.lineno, runs)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, runs)

    yield from visit(ast.parse(source), runs=True)


@cache
def _graph() -> tuple[Import, ...]:
    return tuple(
        edge
        for module, file in _modules().items()
        for edge in _imports_in(module, file.read_text(), is_package=file.name == "__init__.py")
        if edge.target != module
    )


def _layer(module: str) -> int:
    return LAYERS.index(module.partition(".")[0])


def upward_imports(edges: tuple[Import, ...]) -> list[Import]:
    """Imports of a package further right in :data:`LAYERS` than the importer's own."""
    return [edge for edge in edges if _layer(edge.target) > _layer(edge.source)]


def import_cycles(edges: tuple[Import, ...]) -> list[list[Import]]:
    """One cycle (as its edges) per group of modules that import each other, through imports
    that run (Tarjan's strongly connected components)."""
    successors: dict[str, dict[str, Import]] = {}
    for edge in edges:
        if edge.runs:
            successors.setdefault(edge.source, {}).setdefault(edge.target, edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in successors.get(module, {}):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = set()
            while (member := stack.pop()) != module:
                group.add(member)
            if group:
                groups.append({module, *group})

    for module in sorted(_modules()):
        if module not in index:
            connect(module)
    return [_cycle_in(min(group), group, successors) for group in groups]


def _cycle_in(
    start: str, group: set[str], successors: dict[str, dict[str, Import]]
) -> list[Import]:
    """The shortest way from ``start`` back to itself within ``group`` (breadth first)."""
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target, edge in successors.get(module, {}).items():
            if target == start:
                return [*paths[module], edge]
            if target in group and target not in paths:
                paths[target] = [*paths[module], edge]
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def _listing(edges: list[Import]) -> str:
    return "\n".join(f"  {edge}" for edge in edges)


SAMPLE = """
import json
import schemas.codec
from typing import TYPE_CHECKING
from schemas.events import PredictionEvent
from stream_app import topics
from . import live
from ..settings import Settings

if TYPE_CHECKING:
    from detectors.config import DetectorList
else:
    from detectors import signals


def command() -> None:
    from stream_app.runtimes import run_worker
"""


def test_the_graph_sees_every_kind_of_import() -> None:
    found = {
        (edge.target, edge.runs, edge.line) for edge in _imports_in("stream_app.cli.notify", SAMPLE)
    }
    assert found == {
        ("schemas.codec", True, 3),  # a module
        ("schemas.events", True, 5),  # from a module, a name
        ("stream_app.topics", True, 6),  # from a package, a module
        ("stream_app.cli.live", True, 7),  # relative
        ("stream_app.settings", True, 8),  # relative, two levels
        ("detectors.config", False, 11),  # only for the type checker
        ("detectors.signals", True, 13),  # its else
        ("stream_app.runtimes", True, 17),  # in a function
    }


def test_no_modules_import_each_other() -> None:
    cycles = import_cycles(_graph())
    assert not cycles, "modules that import each other (move what both need lower):\n" + (
        "\n".join(_listing(cycle) for cycle in cycles)
    )


def test_a_package_imports_only_the_layers_below_it() -> None:
    upward = upward_imports(_graph())
    assert not upward, f"imports against the layers {' <- '.join(LAYERS)}:\n" + _listing(upward)


def test_cli_commands_share_their_helpers_through_one_module_not_each_other() -> None:
    commands = [
        edge
        for edge in _graph()
        if edge.source.startswith(f"{CLI}.")
        and edge.target.startswith(f"{CLI}.")
        and CLI_SHARED not in (edge.source, edge.target)
    ]
    assert not commands, f"CLI commands importing each other (share through {CLI_SHARED}):\n" + (
        _listing(commands)
    )


def test_the_product_needs_nothing_of_local_development() -> None:
    """The runtimes, the processors and the live state import none of the local services and
    the demo (``stream_app.local``): a worker in production runs without them."""
    product = ("stream_app.runtimes", "stream_app.live_state", "stream_app.processors")
    reaching = [
        edge
        for edge in _graph()
        if edge.source.startswith(product) and edge.target.startswith(LOCAL)
    ]
    assert not reaching, f"the product importing {LOCAL}:\n" + _listing(reaching)


def test_importing_the_settings_loads_no_detection_code() -> None:
    """Whatever only needs the settings' classes (preflight, topics, services) stays fast:
    river alone takes over a second to import."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, stream_app.settings; print(json.dumps([*sys.modules]))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packages = {name.partition(".")[0] for name in json.loads(loaded)}
    assert sorted(packages & {"detectors", "pipeline", "river"}) == []
