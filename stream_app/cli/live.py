"""``driftstream worker``, ``alerts`` and ``state``: run the stream app and look at its output."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer
from confluent_kafka import Consumer
from rich.table import Table

from schemas.codec import decode
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert
from stream_app.cli.console import console, errors, fail
from stream_app.settings import Settings
from stream_app.topics import Topics


def worker(
    loglevel: Annotated[str, typer.Option(help="crit, error, warn, info or debug.")] = "info",
) -> None:
    """Run the stream worker: join, detect, publish alerts, keep the Redis view (Ctrl-C stops)."""
    from stream_app.worker import run_worker  # Faust is slow to import; only this command needs it

    run_worker(Settings(), ["--loglevel", loglevel])


def format_alert(alert: DriftAlert) -> str:
    """One line per alert, for people."""
    return (
        f"{alert.event_time:%Y-%m-%d %H:%M:%S} {alert.severity.upper():8} {alert.model_id} "
        f"{alert.kind} drift on {alert.signal} ({alert.detector}): mean {alert.before.mean:.3f} "
        f"-> {alert.after.mean:.3f} [{alert.alert_id[:12]}]"
    )


def alerts(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for alerts.")
    ] = False,
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert per line.")] = False,
    idle_seconds: Annotated[
        float, typer.Option(help="Without --follow: stop after this long without a new alert.")
    ] = 3.0,
) -> None:
    """Print the alerts topic from the beginning (and, with --follow, as alerts arrive)."""
    settings = Settings()
    topic = Topics(settings.topics.prefix).alerts
    consumer = Consumer({
        **settings.kafka.client_config(),
        "group.id": f"driftstream-alerts-cli-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([topic])
    try:
        while True:
            message = consumer.poll(1.0 if follow else idle_seconds)
            if message is None:
                if follow:
                    continue
                break
            if message.error() is not None:
                errors.print(f"[yellow]{message.error()}[/yellow]")
                continue
            try:
                alert = decode(DriftAlert, message.value() or b"")
            except InvalidEvent as exc:
                errors.print(f"[yellow]skipping an invalid alert: {exc.reason}[/yellow]")
                continue
            if model is None or alert.model_id == model:
                console.print(alert.model_dump_json() if as_json else format_alert(alert),
                              soft_wrap=True, markup=False)  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def state(
    model: Annotated[str | None, typer.Argument(help="One model id (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print the live per-model state from Redis."""
    import redis

    from stream_app.live_state import LiveStateKeys, read_live_state
    from stream_app.services.redis import redis_client

    settings = Settings()
    try:
        with redis_client(
            settings.redis, socket_connect_timeout=2.0, decode_responses=True
        ) as client:
            view = read_live_state(client, LiveStateKeys(settings.redis.key_prefix), model)
    except redis.RedisError as exc:
        fail(f"Redis at {settings.redis.url} did not answer: {exc}")
    if as_json:
        console.print(json.dumps(view, indent=2, sort_keys=True), markup=False)
        return
    pipeline = view.pop("_pipeline", {})
    if not view:
        fail(f"no state for {model!r}" if model else "no models in Redis yet", code=3)
    columns = {"predictions": "predictions", "labels": "labels", "joined": "joined",
               "expired_predictions": "expired", "orphan_labels": "orphan labels",
               "accuracy": "accuracy", "status": "status", "alerts": "alerts"}  # fmt: skip
    table = Table("model", *columns.values())
    for model_id, fields in view.items():
        table.add_row(model_id, *(_short(fields.get(c, "0")) for c in columns))
    console.print(table)
    if pipeline:
        console.print("pipeline: " + ", ".join(f"{k} {v}" for k, v in sorted(pipeline.items())))


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.3f}" if not number.is_integer() else str(int(number))
