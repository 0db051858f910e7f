"""``python -m bench --quick`` is a smoke run: its sections go to a scratch file, not to
docs/benchmarks.md, unless ``--output`` names a file (each benchmark's own ``--quick`` alike:
``bench.results.parser``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

import bench.__main__ as run_all
from bench.results import DOCUMENT, QUICK_DOCUMENT, parser


def benchmark_argvs(monkeypatch: pytest.MonkeyPatch, *argv: str) -> list[list[str]]:
    """What ``python -m bench ARGV`` passes to each benchmark's main()."""
    calls: list[list[str]] = []
    benchmark = SimpleNamespace(main=calls.append)
    monkeypatch.setattr(importlib, "import_module", lambda _name: benchmark)
    run_all.main(list(argv))
    assert len(calls) == len(run_all.BENCHMARKS)
    return calls


def test_a_quick_run_writes_the_scratch_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for argv in benchmark_argvs(monkeypatch, "--quick"):
        assert argv == ["--quick", "--output", str(QUICK_DOCUMENT)]
    assert QUICK_DOCUMENT != DOCUMENT


def test_an_explicit_output_and_a_full_run_write_where_they_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    chosen = str(tmp_path / "quick.md")
    for argv in benchmark_argvs(monkeypatch, "--quick", "--output", chosen):
        assert argv == ["--quick", "--output", chosen]
    for argv in benchmark_argvs(monkeypatch):
        assert argv == ["--output", str(DOCUMENT)]


def test_each_benchmarks_parser_sends_quick_runs_to_the_scratch_file() -> None:
    options = parser("python -m bench.x", None)
    assert options.parse_args(["--quick"]).output == QUICK_DOCUMENT
    assert options.parse_args([]).output == DOCUMENT
    explicit = options.parse_args(["--output", str(DOCUMENT), "--quick"])
    assert (explicit.output, explicit.quick) == (DOCUMENT, True)
