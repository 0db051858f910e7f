"""``driftstream services up|down|status``: the local Kafka and Redis for development."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from stream_app.cli.console import console, fail, load_settings, say
from stream_app.local.services import (
    ServiceError,
    ServiceStatus,
    services_down,
    services_status,
    services_up,
)

services_app = typer.Typer(
    help="Run a local Kafka (KRaft) and Redis on loopback.", no_args_is_help=True
)


def _show(statuses: list[ServiceStatus]) -> None:
    table = Table("service", "address", "state")
    for s in statuses:
        table.add_row(s.name, s.address, s.state)
    console.print(table)


@services_app.command()
def up() -> None:
    """Start Kafka and Redis unless they already answer (fetches Kafka's jars on first use)."""
    try:
        _show(services_up(load_settings(), say))
    except ServiceError as exc:
        fail(escape(str(exc)))


@services_app.command()
def down() -> None:
    """Stop the services that 'up' started (by pid file); never touches anything else."""
    _show(services_down(load_settings()))


@services_app.command()
def status() -> None:
    """Show whether each service answers at its configured address, and whether it is ours."""
    statuses = services_status(load_settings())
    _show(statuses)
    if any(not s.state.startswith("up") for s in statuses):
        raise typer.Exit(3)
