"""``driftstream topics create|check``: the worker's topics, for operators who make them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stream_app.cli.console import console, fail, load_settings

topics_app = typer.Typer(
    help="Create or check the topics the worker needs (partitions, replication, compaction).",
    no_args_is_help=True,
)


@topics_app.command()
def create() -> None:
    """Create the topics the worker needs and is missing (as the worker does at start), then
    check them all."""
    from stream_app.topics import TopicError, ensure_worker_topics

    settings = load_settings()
    app_id = settings.worker.app_id or f"{settings.topics.prefix}worker"
    try:
        counts = ensure_worker_topics(settings, app_id)
    except TopicError as exc:
        fail(escape(str(exc)), code=2)
    for name in sorted(n for n in counts if n.startswith(settings.topics.prefix)):
        console.print(f"{name}: {counts[name]} partitions")
    check()


@topics_app.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Say what is wrong with the worker's topics and how to fix it; exit 1 if anything is."""
    from stream_app.topic_plan import needed, problems, read_broker
    from stream_app.topics import TopicError

    settings = load_settings()
    try:
        broker = read_broker(settings.kafka, settings.topics.prefix, timeout=10.0)
    except TopicError as exc:
        fail(escape(str(exc)), code=2)
    found = problems(settings, broker)
    if as_json:
        typer.echo(json.dumps([asdict(p) for p in found], indent=2))  # unwrapped
    else:
        table = Table("topic", "partitions", "replication", "state")
        wrong = {p.topic for p in found}
        for topic in needed(settings, broker):
            state = broker.get(topic.name)
            table.add_row(
                topic.name,
                str(state.partitions) if state else "-",
                str(state.replication) if state else "-",
                "[red]problem[/red]" if topic.name in wrong else "ok",
            )
        console.print(table)
        for problem in found:
            console.print(f"[red]{escape(problem.topic)}[/red]: {escape(problem.wrong)}")
            console.print(f"  fix: {escape(problem.fix)}", soft_wrap=True)  # one line to copy
    if found:
        raise typer.Exit(1)
