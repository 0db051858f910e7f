"""Fixtures of the unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

import stream_app.cli.live
import stream_app.live_state.reader
import stream_app.preflight
from stream_app.cli import app


@pytest.fixture
def state_of(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs ``driftstream state`` on a given view instead of Redis; its stdout lines."""

    @contextlib.contextmanager
    def no_redis(*_args: Any, **_kwargs: Any) -> Iterator[None]:
        yield None

    def run(view: dict[str, dict[str, Any]]) -> list[str]:
        monkeypatch.setattr(stream_app.live_state.reader, "read_live_state", lambda *a: view)
        result = CliRunner().invoke(app, ["state"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    monkeypatch.setattr(stream_app.cli.live, "login_or_fail", lambda *a, **k: None)
    monkeypatch.setattr(stream_app.preflight, "redis_client", no_redis)
    return run
