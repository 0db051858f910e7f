"""``driftstream topics create|check``: the worker's topics, for operators who make them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stream_app.cli.console import console, fail, load_settings, say

if TYPE_CHECKING:
    from stream_app.settings import Settings
    from stream_app.topic_plan import TopicState

topics_app = typer.Typer(
    help="Create or check the topics the worker needs (partitions, replication, compaction).",
    no_args_is_help=True,
)


@topics_app.command()
def create() -> None:
    """Create the missing topics the worker needs, then check them all (exit 1 on an
    error)."""
    from stream_app.topic_plan import create_missing

    settings = load_settings()
    broker = _read(settings)
    try:
        made = create_missing(settings, broker)
    except RuntimeError as exc:  # TopicError, or Kafka stopped answering
        fail(escape(str(exc)), code=2)
    for name, state in made.items():
        config = ", ".join(f"{k}={v}" for k, v in state.config.items())
        line = f"created {name}: {state.partitions} partitions, {state.replication} replicas"
        console.print(f"{line}, {config}", soft_wrap=True)
    if not made:
        say("nothing to create")
    _report(settings, _read(settings), as_json=False)


@topics_app.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Say what is wrong with the worker's topics and how to fix it; exit 1 on an error (a
    warning alone exits 0)."""
    settings = load_settings()
    _report(settings, _read(settings), as_json)


def _read(settings: Settings) -> dict[str, TopicState]:
    """The broker's topics; one ``error:`` line and exit code 2 if it does not answer."""
    from stream_app.preflight import PreflightError, check_kafka
    from stream_app.topic_plan import read_broker
    from stream_app.topics import TopicError

    try:
        check_kafka(settings.kafka)
        return read_broker(settings)
    except (PreflightError, TopicError) as exc:
        fail(escape(str(exc)), code=2)


def _report(settings: Settings, broker: dict[str, TopicState], as_json: bool) -> None:
    from stream_app.topic_plan import needed, problems

    wanted, found = needed(settings, broker), problems(settings, broker)
    if as_json:
        rows = [
            {
                "topic": t.name,
                "partitions": broker[t.name].partitions if t.name in broker else None,
                "replication": broker[t.name].replication if t.name in broker else None,
                "ok": all(p.topic != t.name for p in found),
            }
            for t in wanted
        ]
        typer.echo(json.dumps({"topics": rows, "problems": [asdict(p) for p in found]}, indent=2))
    else:
        table = Table("topic", "partitions", "replication", "state")
        for t in wanted:
            state, own = broker.get(t.name), [p for p in found if p.topic == t.name]
            table.add_row(
                t.name,
                str(state.partitions) if state else "-",
                str(state.replication) if state else "-",
                "\n".join(f"[{_colour(p.severity)}]{escape(p.wrong)}[/]" for p in own)
                or "[green]ok[/green]",
            )
        console.print(table)
        for p in found:
            console.print(f"[{_colour(p.severity)}]{escape(p.topic)}[/]: {escape(p.wrong)}")
            console.print(f"  fix: {escape(p.fix)}", soft_wrap=True)  # one line to copy
    if any(p.severity == "error" for p in found):
        raise typer.Exit(1)


def _colour(severity: str) -> str:
    return "red" if severity == "error" else "yellow"
