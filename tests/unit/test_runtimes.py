"""The runtime registry (``stream_app.runtimes.RUNTIMES``) is the one list of runtimes: the
settings, the CLI's choice and help, and the docs follow it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.runtimes import ENGINES, RUNTIMES, UnknownRuntimeError, runtime
from stream_app.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def section(title: str) -> str:
    """The text of the docs/architecture.md section whose ``## `` heading starts with ``title``."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    found = re.search(rf"^## {re.escape(title)}.*?(?=^## )", text, re.M | re.S)
    assert found, f"docs/architecture.md has no section '## {title}'"
    return found.group(0)


def test_engines_are_the_registry() -> None:
    assert tuple(RUNTIMES) == ENGINES
    assert WorkerSettings().engine == ENGINES[0]
    for name in ENGINES:
        assert WorkerSettings(engine=name).engine == name


def test_every_runtime_is_in_the_worker_help() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    help_text = " ".join(result.output.split())
    for name, registered in RUNTIMES.items():
        assert f"{name}: {registered.description}" in help_text, (name, help_text)


def test_every_runtime_is_in_the_docs_runtime_section() -> None:
    runtimes = section("Runtimes")
    for name in RUNTIMES:
        assert f"`{name}`" in runtimes, f"runtime {name} is not named in '## Runtimes'"


def test_every_runner_can_be_found() -> None:
    """Each runner's module:function exists (imported in a fresh interpreter: the import of
    one runtime must not load the other's libraries)."""
    for name in RUNTIMES:
        others = [other for other in RUNTIMES if other != name]
        code = (
            "import sys\n"
            "from stream_app.runtimes import runtime\n"
            f"assert callable(runtime({name!r}).runner())\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[:3] in "
            f"[['stream_app', 'runtimes', o] for o in {others!r}]))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]", f"choosing {name} imported {out}"


def test_an_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(UnknownRuntimeError, match="unknown engine 'spark': choose one of kafka"):
        runtime("spark")
    with pytest.raises(ValidationError, match="unknown engine 'spark': choose one of kafka"):
        WorkerSettings(engine="spark")


def test_the_cli_refuses_an_unknown_engine_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    result = CliRunner().invoke(app, ["worker", "--engine", "spark"])
    assert result.exit_code == 2, result.output
    assert f"unknown engine 'spark': choose one of {', '.join(ENGINES)}" in result.output


def test_how_to_extend_names_every_runtime_and_signal_source() -> None:
    from detectors.sources import SOURCES

    extend = section("How to extend")
    for name in RUNTIMES:
        assert f"`{name}`" in extend, f"runtime {name} is not named in '## How to extend'"
    for source in SOURCES:
        assert f"`{source.__name__}`" in extend, (
            f"signal source {source.__name__} is not named in '## How to extend'"
        )
