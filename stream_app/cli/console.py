"""What the CLI commands share: console output, errors, and loading the settings."""

from __future__ import annotations

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
