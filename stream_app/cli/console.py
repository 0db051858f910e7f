"""What the CLI commands share: console output, errors, loading the settings, the login check,
and the count of a file's bad lines.

Commands (``stream_app/cli/<command>.py``) import what they share from here, never from each
other (``tests/unit/test_layers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from stream_app.settings import Settings

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def say(message: str) -> None:
    """A progress line, dimmed, on stdout."""
    console.print(f"[dim]·[/dim] {message}")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    import typer

    errors.print(f"[bold red]error:[/bold red] {message}", soft_wrap=True)  # one line, unwrapped
    raise typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment; an invalid one is an ``error:`` line naming its
    variable (never its value) and exit code 2."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"DRIFTSTREAM_{'__'.join(str(part).upper() for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        fail(escape(f"invalid setting: {problems}"), code=2)


def login_or_fail(settings: Settings, *, kafka: bool = False, redis: bool = False) -> None:
    """Check that Kafka and/or Redis take the configured credentials; if not, one ``error:``
    line and exit 1 (instead of a client's retry loop)."""
    from stream_app.preflight import PreflightError, check_kafka, check_redis

    try:
        if kafka:
            check_kafka(settings.kafka)
        if redis:
            check_redis(settings.redis)
    except PreflightError as exc:
        fail(escape(str(exc)))


MAX_REPORTED_INVALID = 10
"""Bad lines reported one by one; the rest are only counted."""


@dataclass(slots=True)
class SkippedLines:
    """The bad lines of an event file (``replay``, ``calibrate``): all counted, the first ones
    reported on stderr."""

    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.reasons) < MAX_REPORTED_INVALID:
            self.reasons.append(reason)
            errors.print(f"[yellow]skipped[/yellow] {escape(reason)}", soft_wrap=True)
