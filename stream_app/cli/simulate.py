"""``driftstream simulate``: seeded model traffic with known drift, into Kafka or a file.

Examples::

    driftstream simulate --model fraud=abrupt --model churn=data-drift --events 5000
    driftstream simulate --duration 60 --rate 200 --truth truth.json
    driftstream simulate --model demo=gradual --to-file events.jsonl

``--to-file FILE`` writes the same events as JSON lines instead of sending them, one line per
event in stream order (UTF-8), ``event`` being exactly the Kafka message value::

    {"kind": "prediction", "event": {<PredictionEvent JSON>}}
    {"kind": "label", "event": {<LabelEvent JSON>}}

``producers.event_file.read_event_file`` reads it back. ``--truth FILE`` writes a JSON list of
``producers.simulator.Truth`` records (scenario, drift start index and event time, counts).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from confluent_kafka import KafkaException
from pydantic import TypeAdapter
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from producers.event_file import EventFileWriter
from producers.kafka_producer import EventProducer
from producers.pacing import paced
from producers.scenarios import Scenario
from producers.sink import DeliveryStats, EventSink
from schemas.events import LabelEvent, ModelId, PredictionEvent
from stream_app.cli.console import console, fail, load_settings, say
from stream_app.preflight import check_kafka
from stream_app.topics import ensure_topics

if TYPE_CHECKING:  # the simulator imports river, too slow to load for every CLI command
    from producers.simulator import LabelPolicy, ModelTraffic

DEFAULT_MODEL = "demo=abrupt"
TOPIC_TIMEOUT_SECONDS = 15.0


def simulate(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help=f"NAME=SCENARIO, repeatable; scenarios: {', '.join(Scenario)}.",
            show_default=DEFAULT_MODEL,
        ),
    ] = None,
    events: Annotated[int, typer.Option(min=1, help="Predictions per model.")] = 2000,
    duration: Annotated[
        float | None,
        typer.Option(min=0, help="Run about this many seconds at --rate (instead of --events)."),
    ] = None,
    rate: Annotated[
        float, typer.Option(min=0, help="Events sent per second, all models (0: no limit).")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Same seed, same events, byte for byte.")] = 0,
    label_coverage: Annotated[
        float, typer.Option(min=0, max=1, help="Share of requests that get a label.")
    ] = 0.8,
    label_delay: Annotated[
        float, typer.Option(min=0.001, help="Mean label delay, seconds of event time.")
    ] = 30.0,
    early_label_prob: Annotated[
        float, typer.Option(min=0, max=1, help="Share of labels that precede their prediction.")
    ] = 0.05,
    duplicate_label_prob: Annotated[
        float, typer.Option(min=0, max=1, help="Share of labels delivered twice.")
    ] = 0.02,
    drift_at: Annotated[
        int | None, typer.Option(min=0, help="Prediction index where drift starts.")
    ] = None,
    drift_width: Annotated[
        int | None,
        typer.Option(min=0, help="Predictions a gradual drift (or a recurring episode) lasts."),
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Write what really happened (JSON) to this file.")
    ] = None,
    to_file: Annotated[
        Path | None, typer.Option(help="Write JSON lines to this file instead of Kafka.")
    ] = None,
) -> None:
    """Simulate models' predictions and late labels under drift scenarios, with a known truth."""
    from producers.simulator import LabelPolicy, ModelTraffic, Truth
    from producers.simulator import simulate as simulated_events

    specs = [_parse_model(spec) for spec in model or [DEFAULT_MODEL]]
    try:
        policy = LabelPolicy(
            coverage=label_coverage,
            mean_delay=label_delay,
            early_prob=early_label_prob,
            duplicate_prob=duplicate_label_prob,
        )
        n_predictions = (
            events if duration is None else _predictions_for(duration, rate, len(specs), policy)
        )
        traffic = [
            ModelTraffic(
                name,
                scenario,
                n_predictions,
                seed,
                drift_at=drift_at,
                drift_width=drift_width,
                labels=policy,
            )
            for name, scenario in specs
        ]
        stream = simulated_events(traffic)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        sink = EventFileWriter(to_file) if to_file else _kafka_producer()
    except (KafkaException, RuntimeError) as exc:
        fail(escape(f"cannot set up the Kafka topics: {exc}"))
    started = time.monotonic()
    stats = _send(sink, paced(stream, rate), n_predictions * len(traffic))
    elapsed = time.monotonic() - started
    if truth is not None:
        truth.write_bytes(TypeAdapter(list[Truth]).dump_json([t.truth for t in traffic], indent=2))
        say(f"truth written to {truth}")
    _show_summary(stats, elapsed, traffic)
    if not stats.ok:
        fail(stats.summary())


def _parse_model(spec: str) -> tuple[str, Scenario]:
    name, separator, scenario = spec.partition("=")
    try:
        if not separator:
            raise ValueError("expected NAME=SCENARIO")
        return TypeAdapter(ModelId).validate_python(name), Scenario(scenario)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint="--model") from exc


def _predictions_for(duration: float, rate: float, n_models: int, policy: LabelPolicy) -> int:
    """Predictions per model that make ``duration`` seconds of events at ``rate`` events/s."""
    if rate <= 0:
        raise ValueError("--duration needs a --rate above 0")
    return max(1, round(duration * rate / (n_models * policy.events_per_prediction)))


def _kafka_producer() -> EventProducer:
    settings = load_settings()
    say(f"preparing topics on Kafka at {settings.kafka.bootstrap_servers}")
    check_kafka(settings.kafka)  # a refused login fails here, not in a silent retry loop
    topics = ensure_topics(settings.kafka, settings.topics, timeout=TOPIC_TIMEOUT_SECONDS)
    say(f"sending to {topics.predictions} and {topics.labels}")
    return EventProducer(settings.kafka, topics)


def _send(
    sink: EventSink, stream: Iterable[PredictionEvent | LabelEvent], predictions: int
) -> DeliveryStats:
    progress = Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} predictions, {task.fields[events]} events"),
        TimeElapsedColumn(),
        console=console,
    )
    try:
        with progress:
            task = progress.add_task("simulate", total=predictions, events=0)
            for count, event in enumerate(stream, start=1):
                sink.send(event)
                progress.update(task, advance=isinstance(event, PredictionEvent), events=count)
    finally:
        stats = sink.close()
    return stats


def _show_summary(stats: DeliveryStats, elapsed: float, traffic: list[ModelTraffic]) -> None:
    models = Table("model", "scenario", "drift at", "predictions", "labels", "duplicates", "early")
    for model in traffic:
        t = model.truth
        drift = (
            "-"
            if t.drift_start_time is None
            else f"#{t.drift_start_index} at {t.drift_start_time:%H:%M:%S}"
        )
        models.add_row(
            t.model_id,
            t.scenario,
            drift,
            *(str(n) for n in (t.predictions, t.labels, t.duplicate_labels, t.early_labels)),
        )
    console.print(models)
    rate = stats.sent / elapsed if elapsed > 0 else 0.0
    console.print(
        f"sent {stats.sent}, delivered {stats.delivered}, failed {stats.failed}, "
        f"undelivered {stats.undelivered} in {elapsed:.1f}s ({rate:,.0f} events/s)"
    )
