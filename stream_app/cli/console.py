"""Shared console output for the CLI commands."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def say(message: str) -> None:
    """A progress line, dimmed, on stdout."""
    console.print(f"[dim]·[/dim] {message}")


def fail(message: str, code: int = 1) -> None:
    """Print ``message`` as an error and exit with ``code``."""
    import typer

    errors.print(f"[bold red]error:[/bold red] {message}", soft_wrap=True)  # one line, unwrapped
    raise typer.Exit(code)
