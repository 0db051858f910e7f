"""``driftstream notify``: deliver alerts to webhooks, a command and MLflow."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Literal

import typer
from confluent_kafka import KafkaException
from rich.markup import escape

from stream_app.cli.console import console, errors, fail, load_settings, login_or_fail
from stream_app.notify.consumer import Level, Notifier, NotifyCounts
from stream_app.notify.delivery import Backoff
from stream_app.notify.message import AlertFilter, Kind, Severity
from stream_app.notify.sinks import CommandSink, Sink, WebhookSink
from stream_app.topics import TopicError

COLOURS: dict[Level, str] = {"info": "", "warning": "yellow", "error": "red"}


def notify(
    webhook: Annotated[
        list[str] | None,
        typer.Option(help="POST each alert's JSON here (repeatable; Slack webhooks work)."),
    ] = None,
    exec_: Annotated[
        str | None,
        typer.Option(
            "--exec", help="Run this command per alert, the alert's JSON on stdin (retrain hook)."
        ),
    ] = None,
    mlflow: Annotated[
        str | None,
        typer.Option(help="Tag the matching registered model version on this MLflow server."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option(help="Only this model's alerts (repeatable).")
    ] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only concept or data drift alerts.")] = None,
    min_severity: Annotated[
        Severity, typer.Option(help="warning: every alert; critical: no warnings.")
    ] = "warning",
    new_incidents_only: Annotated[
        bool,
        typer.Option(
            "--new-incidents-only", help="Only the first alert of each incident (one per episode)."
        ),
    ] = False,
    group: Annotated[
        str | None,
        typer.Option(help="Consumer group: its commits say what was delivered [<prefix>notify]."),
    ] = None,
    start: Annotated[
        Literal["earliest", "latest"],
        typer.Option("--from", help="Where a new group starts: earliest alert or latest."),
    ] = "earliest",
    attempts: Annotated[
        int, typer.Option(min=1, help="Tries per alert and sink before it is dead-lettered.")
    ] = 5,
    backoff: Annotated[
        float, typer.Option(min=0, help="Seconds before the 2nd try; doubles each try.")
    ] = 1.0,
    max_backoff: Annotated[float, typer.Option(min=0, help="Longest wait between tries.")] = 60.0,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a webhook has to answer.")
    ] = 10.0,
    exec_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds the --exec command may run.")
    ] = 300.0,
    idle_seconds: Annotated[
        float | None,
        typer.Option(help="Stop after this long with no alert to read (default: run on)."),
    ] = None,
) -> None:
    """Deliver each alert to every sink once: commit after delivery, retry 5xx answers,
    timeouts and failed commands with backoff, dead-letter what is refused or out of tries.

    Ctrl-C (or SIGTERM) stops after the alert at hand; what was delivered is committed.
    """
    settings = load_settings()
    sinks = _sinks(webhook or [], exec_, mlflow, timeout, exec_timeout)
    login_or_fail(settings, kafka=True)
    notifier = Notifier(
        settings,
        sinks,
        AlertFilter(
            frozenset(model or ()),
            frozenset([kind] if kind else ()),
            min_severity,
            new_incidents_only,
        ),
        Backoff(attempts, backoff, max_backoff),
        group or f"{settings.topics.prefix}notify",
        start,
        _say,
    )
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        notifier.check_topics()
        console.print(
            f"notify: {len(sinks)} sink(s): " + ", ".join(sink.name for sink in sinks),
            markup=False,
            soft_wrap=True,
        )
        with _progress(notifier.counts):
            counts = notifier.run(stop, idle_seconds)
    except TopicError as exc:
        fail(escape(str(exc)))
    except KafkaException as exc:
        fail(escape(f"Kafka failed: {exc}"))
    finally:
        for sink in sinks:
            sink.close()
    console.print(f"notify stopped: {counts.summary()}", markup=False, soft_wrap=True)
    if any(c.failed for c in counts.sinks.values()) or counts.invalid:
        errors.print(
            f"[yellow]dead-lettered alerts are in {notifier.topics.deadletter}"
            " (header driftstream-reason)[/yellow]"
        )


def _sinks(
    webhooks: list[str],
    command: str | None,
    mlflow: str | None,
    timeout: float,
    exec_timeout: float,
) -> list[Sink]:
    """The sinks the options name; a bad one is an ``error:`` line and exit 2."""
    sinks: list[Sink] = []
    try:
        sinks.extend(WebhookSink(url, timeout) for url in webhooks)
        if command is not None:
            sinks.append(CommandSink(command, exec_timeout))
        if mlflow is not None:
            from stream_app.notify.mlflow_sink import MlflowSink

            sinks.append(MlflowSink(mlflow))
    except ValueError as exc:
        fail(escape(str(exc)), code=2)
    if not sinks:
        fail("nowhere to deliver: give --webhook URL, --exec CMD or --mlflow URI", code=2)
    return sinks


def _say(line: str, level: Level) -> None:
    colour = COLOURS[level]
    (errors if level != "info" else console).print(
        f"[{colour}]{escape(line)}[/{colour}]" if colour else escape(line), soft_wrap=True
    )


@contextmanager
def _progress(counts: NotifyCounts) -> Iterator[None]:
    """On a terminal, a status line with the counts so far, refreshed twice a second."""
    if not console.is_terminal:
        yield
        return
    done = threading.Event()
    with console.status(counts.summary()) as status:

        def refresh() -> None:
            while not done.wait(0.5):
                status.update(f"waiting for alerts · {counts.summary()}")

        thread = threading.Thread(target=refresh, name="notify-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (the alert at hand is finished and committed); a
    second SIGINT interrupts at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        print("notify: stopping after the alert at hand", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
