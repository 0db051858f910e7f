"""``driftstream demo``: the whole product, end to end, on local services.

Brings up Kafka and Redis (unless they answer already), starts a worker on topics of its own,
simulates four models (``stable``, ``fraud`` with abrupt concept drift, ``churn`` with data
drift only, ``credit`` whose ``hvalue`` feature goes missing), shows progress and every alert
as it arrives, waits for the worker to catch up, prints a summary scored against the
simulator's truth, draws the report image (from the worker's Redis history), deletes its
topics and stops what it started.

Ctrl-C at any point raises ``KeyboardInterrupt`` once; further Ctrl-Cs are ignored while the
demo stops the worker, deletes its topics and stops the services it started.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import redis
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from producers.kafka_producer import EventProducer
from producers.pacing import paced
from producers.simulator import ModelTraffic, simulate
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.alerts_feed import format_alert, read_alerts
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.reader import read_latest_point, read_live_state
from stream_app.local.services import ServiceStatus, local_services
from stream_app.local.services.base import LocalService
from stream_app.local.services.process import wait_until
from stream_app.preflight import redis_client
from stream_app.report_chart import live_series, write_report
from stream_app.settings import Settings, TopicSettings
from stream_app.topics import Topics, delete_topics, ensure_topics
from stream_app.worker_process import WorkerProcess

Event = PredictionEvent | LabelEvent
View = dict[str, dict[str, object]]

DEFAULT_REPORT = Path("driftstream-demo-report.png")


@dataclass(frozen=True)
class AlertDelay:
    """An alert and how long after the true drift start it came (None: no drift before it).

    ``predictions`` counts the model's predictions made since the drift start that the
    detector had seen when it alerted: for a concept alert those whose label had arrived (in
    event time) by ``detected_at``; ``seconds`` is event time from the drift start to
    ``detected_at``.
    """

    alert: DriftAlert
    predictions: int | None
    seconds: float | None


@dataclass(frozen=True)
class ModelScore:
    """One model's outcome in the demo, scored against the simulator's truth."""

    model_id: str
    scenario: str
    accuracy_before: float | None
    accuracy_after: float | None
    alerts: list[AlertDelay]
    counts: Mapping[str, int]  # the worker's: predictions, labels, joined, expired_predictions


def demo_settings(base: Settings, run_id: str) -> Settings:
    """Settings whose topics and Redis keys belong to this demo run only."""
    return base.model_copy(
        update={
            "topics": TopicSettings(prefix=f"demo-{run_id}.", partitions=base.topics.partitions),
            "redis": base.redis.model_copy(update={"key_prefix": f"demo-{run_id}:driftstream:"}),
        }
    )


def demo_models(n_predictions: int, seed: int) -> list[ModelTraffic]:
    return [
        ModelTraffic("stable", "stable", n_predictions, seed=seed, label_noise=0.05),
        ModelTraffic("fraud", "abrupt", n_predictions, seed=seed + 1),
        ModelTraffic("churn", "data-drift", n_predictions, seed=seed + 2),
        ModelTraffic("credit", "missing-feature", n_predictions, seed=seed + 3),
    ]


def accuracy(
    events: Sequence[Event], model_id: str, start: datetime, end: datetime
) -> float | None:
    """Accuracy of ``model_id``'s labelled predictions made in [start, end)."""
    labels = {e.request_id: e.label for e in events if isinstance(e, LabelEvent)}
    hits = [
        e.prediction == labels[e.request_id]
        for e in events
        if isinstance(e, PredictionEvent)
        and e.model_id == model_id
        and e.request_id in labels
        and start <= e.timestamp < end
    ]
    return sum(hits) / len(hits) if hits else None


def score(
    models: Sequence[ModelTraffic],
    events: Sequence[Event],
    alerts: Sequence[DriftAlert],
    view: View,
) -> list[ModelScore]:
    """Accuracy before/after each true drift start, each alert's delay, the worker's counts."""
    first = min(e.timestamp for e in events)
    last = max(e.timestamp for e in events)
    label_times: dict[str, datetime] = {}
    for e in events:
        if isinstance(e, LabelEvent):
            label_times[e.request_id] = min(e.timestamp, label_times.get(e.request_id, e.timestamp))
    scores = []
    for model in models:
        start = model.truth.drift_start_time
        split = start or first + (last - first) / 2

        def delay(alert: DriftAlert, start: datetime | None = start) -> AlertDelay:
            if start is None or alert.event_time < start:
                return AlertDelay(alert, None, None)
            seen = sum(
                1
                for e in events
                if isinstance(e, PredictionEvent)
                and e.model_id == alert.model_id
                and start <= e.timestamp <= alert.detected_at
                and (alert.kind == "data" or _labelled_by(label_times, e.request_id, alert))
            )
            return AlertDelay(alert, seen, (alert.detected_at - start).total_seconds())

        mine = sorted((a for a in alerts if a.model_id == model.model_id), key=_detected)
        fields = view.get(model.model_id, {})
        counts = ("predictions", "labels", "joined", "expired_predictions")
        scores.append(
            ModelScore(
                model_id=model.model_id,
                scenario=str(model.truth.scenario),
                accuracy_before=accuracy(events, model.model_id, first, split),
                accuracy_after=accuracy(events, model.model_id, split, last),
                alerts=[delay(alert) for alert in mine],
                counts={name: int(str(fields.get(name, 0))) for name in counts},
            )
        )
    return scores


def _labelled_by(label_times: Mapping[str, datetime], request_id: str, alert: DriftAlert) -> bool:
    """Whether the request's label had arrived (event time) when ``alert`` was detected."""
    label_time = label_times.get(request_id)
    return label_time is not None and label_time <= alert.detected_at


def _detected(alert: DriftAlert) -> datetime:
    return alert.detected_at


class AlertWatcher:
    """Follows the alerts topic in a thread; prints each alert and keeps them all."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self.alerts: list[DriftAlert] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(settings, console), daemon=True)

    def _run(self, settings: Settings, console: Console) -> None:
        for item in read_alerts(settings, follow=True, stop=self._stop):
            if isinstance(item, DriftAlert):
                self.alerts.append(item)
                console.print(
                    f"[bold red]ALERT[/bold red] {escape(format_alert(item))}", soft_wrap=True
                )

    def __enter__(self) -> AlertWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


@contextmanager
def interrupt_once() -> Iterator[None]:
    """The first SIGINT raises ``KeyboardInterrupt``; later ones are ignored until the block
    ends, so the cleanup it triggers runs to the end."""

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def demo_services(base: Settings, say: Callable[[str], None]) -> Iterator[list[ServiceStatus]]:
    """Kafka and Redis up (reused when they answer); on the way out, however it is left (also
    while a service is still starting), stop the ones this block started."""
    launched: list[LocalService] = []
    statuses: list[ServiceStatus] = []
    try:
        for service in local_services(base):
            if not service.answers():
                launched.append(service)  # before up(): an interrupted start is stopped too
            statuses.append(ServiceStatus(service.name, service.address, service.up(say)))
            say(f"{service.name} on {service.address}: {statuses[-1].state}")
        yield statuses
    finally:
        for service in reversed(launched):
            if service.down():
                say(f"stopped {service.name}, which the demo started")


def _progress_table(view: View, sent: int, total: int) -> Table:
    table = Table(title=f"sent {sent}/{total} events", title_justify="left")
    for column in ("model", "predictions", "labels", "joined", "accuracy", "status", "alerts"):
        table.add_column(column)
    for model_id, fields in sorted(view.items()):
        if model_id.startswith("_"):
            continue
        accuracy_text = f"{float(str(fields['accuracy'])):.3f}" if "accuracy" in fields else "-"
        table.add_row(
            model_id,
            *(str(fields.get(c, 0)) for c in ("predictions", "labels", "joined")),
            accuracy_text,
            str(fields.get("status", "-")),
            str(fields.get("alerts", 0)),
        )
    return table


def run_demo(
    console: Console, duration: float, rate: float, seed: int, report: Path = DEFAULT_REPORT
) -> list[ModelScore]:
    """Run the demo; returns the per-model scores (after printing everything)."""

    def say(message: str) -> None:
        console.print(f"[dim]·[/dim] {escape(message)}", soft_wrap=True)

    base = Settings()
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    settings = demo_settings(base, run_id)
    one_each = demo_models(1, seed)
    per_prediction = one_each[0].labels.events_per_prediction
    n_predictions = max(500, round(duration * rate / (len(one_each) * per_prediction)))
    models = demo_models(n_predictions, seed)
    keys = LiveStateKeys(settings.redis.key_prefix)
    data_dir = base.worker.data_dir / f"demo-{run_id}"
    worker = WorkerProcess(
        {
            "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix,
            "DRIFTSTREAM_REDIS__KEY_PREFIX": settings.redis.key_prefix,
            "DRIFTSTREAM_WORKER__DATA_DIR": str(data_dir),
            "DRIFTSTREAM_WORKER__REDIS_FLUSH_SECONDS": "0.25",  # more report points
            # the demo's stream ends by design: its models going silent then is no news
            "DRIFTSTREAM_WORKER__WALL_CLOCK_SILENCE": "false",
        },
        base.services.state_dir / f"demo-worker-{run_id}.log",
    )
    events: list[Event] = []
    with interrupt_once(), demo_services(base, say) as statuses:
        try:
            say(f"topics {settings.topics.prefix}*, Redis keys {settings.redis.key_prefix}*")
            topics = ensure_topics(settings.kafka, settings.topics)
            say(f"worker log: {worker.log_file}")
            with (
                redis_client(settings.redis, decode_responses=True) as client,
                AlertWatcher(settings, console) as watcher,
            ):
                data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
                with worker:
                    _send(console, settings, topics, models, rate, events, worker, client)
                    say(f"all {len(events)} events sent; waiting for the worker")
                    _wait_for_worker(client, keys, events, watcher)
                # the worker has stopped and flushed its last state: draw what it wrote
                view = read_live_state(client, keys)
                console.print(_progress_table(view, len(events), len(events)))
                scores = score(models, events, watcher.alerts, view)
                series = [
                    replace(
                        live_series(client, keys, model.model_id),
                        drift_start=model.truth.drift_start_time,
                        description=str(model.truth.scenario),
                    )
                    for model in models
                ]
                write_report(series, report, title=f"driftstream demo {run_id}")
        finally:
            worker.stop()  # already stopped unless interrupted before or while starting it
            shutil.rmtree(data_dir, ignore_errors=True)
            if any(s.name == "kafka" for s in statuses):  # Kafka is up: delete our topics
                _delete_topics(settings, say)
    console.print(_summary_table(scores))
    console.print(f"report: {escape(str(report.resolve()))}", soft_wrap=True)
    if all(s.state != "started" for s in statuses):
        console.print(
            f"Inspect this run's live state: DRIFTSTREAM_REDIS__KEY_PREFIX="
            f"{settings.redis.key_prefix} driftstream state (or report)",
            markup=False,
            soft_wrap=True,
        )
    return scores


def _delete_topics(settings: Settings, say: Callable[[str], None]) -> None:
    try:
        deleted = delete_topics(settings.kafka, settings.topics.prefix)
    except Exception as exc:  # the demo ends anyway; say what is left behind
        say(f"could not delete the topics {settings.topics.prefix}*: {exc}")
    else:
        say(f"deleted the demo's {len(deleted)} topics")


def _send(
    console: Console,
    settings: Settings,
    topics: Topics,
    models: Sequence[ModelTraffic],
    rate: float,
    events: list[Event],
    worker: WorkerProcess,
    client: redis.Redis,
) -> None:
    """Send the simulated traffic at ``rate``, showing the worker's counts as they grow."""
    stream = list(simulate(models))
    keys = LiveStateKeys(settings.redis.key_prefix)
    console.print(f"[dim]·[/dim] sending {len(stream)} events at {rate:.0f} per second")
    with (
        EventProducer(settings.kafka, topics) as producer,
        Live(console=console, refresh_per_second=2, transient=True) as live,
    ):
        shown = 0.0
        for event in paced(stream, rate):
            producer.send(event)
            events.append(event)
            if time.monotonic() - shown > 0.5:
                live.update(
                    _progress_table(read_live_state(client, keys), len(events), len(stream))
                )
                shown = time.monotonic()
                if not worker.running:
                    raise RuntimeError(f"the worker stopped:\n{worker.log_tail()}")


def _wait_for_worker(
    client: redis.Redis, keys: LiveStateKeys, events: Sequence[Event], watcher: AlertWatcher
) -> None:
    """Until every model's detectors have seen each prediction sent and each labelled
    request's outcome (the bank's counts in its latest history point), and each alert the
    worker counted was shown."""
    expected: Counter[tuple[str, str]] = Counter()
    labelled = {e.request_id for e in events if isinstance(e, LabelEvent)}
    for e in events:
        if isinstance(e, PredictionEvent):
            expected[e.model_id, "predictions"] += 1
            expected[e.model_id, "outcomes"] += e.request_id in labelled

    def behind() -> list[str]:
        lagging = []
        for model_id in {model for model, _ in expected}:
            point = read_latest_point(client, keys, model_id)
            seen = (0, 0) if point is None else (point.predictions, point.outcomes)
            wanted = (expected[model_id, "predictions"], expected[model_id, "outcomes"])
            if seen[0] < wanted[0] or seen[1] < wanted[1]:
                lagging.append(
                    f"{model_id}: {seen[0]}/{wanted[0]} predictions, {seen[1]}/{wanted[1]} outcomes"
                )
        return lagging

    if not wait_until(lambda: not behind(), timeout=120, interval=0.5):
        raise RuntimeError(f"the worker's detectors did not catch up in 120 s: {behind()}")

    def alerts_in_redis() -> int:
        view = read_live_state(client, keys)
        return sum(
            int(fields.get("alerts", 0)) for model, fields in view.items() if model[0] != "_"
        )

    if not wait_until(lambda: len(watcher.alerts) >= alerts_in_redis(), timeout=30):
        raise RuntimeError(f"{alerts_in_redis()} alerts in Redis, {len(watcher.alerts)} shown")


def _summary_table(scores: Sequence[ModelScore]) -> Table:
    """A column per model (narrow enough for a terminal), a row per measure."""
    table = Table(
        "",
        title="driftstream demo: what happened",
        title_justify="left",
        caption="alert +N (T s): the model's predictions since the true drift start that the "
        "detector had seen (with their labels, for a concept alert), and the event time it took",
        caption_justify="left",
    )
    for s in scores:
        table.add_column(s.model_id, justify="right")
    rows: dict[str, list[str]] = {
        "scenario": [s.scenario for s in scores],
        **{
            label: [f"{s.counts[name]:,}" for s in scores]
            for label, name in (
                ("predictions", "predictions"),
                ("labels", "labels"),
                ("joined", "joined"),
                ("expired", "expired_predictions"),
            )
        },
        "accuracy before": [_fraction(s.accuracy_before) for s in scores],
        "accuracy after": [_fraction(s.accuracy_after) for s in scores],
        "alerts": ["\n".join(map(_alert_cell, s.alerts)) or "-" for s in scores],
        "incidents": [_incidents_cell(s.alerts) for s in scores],
    }
    for label, cells in rows.items():
        table.add_row(label, *cells)
    return table


def _alert_cell(delay: AlertDelay) -> str:
    """Two lines: the signal, then the detector and the delay."""
    alert = delay.alert
    if delay.predictions is None or delay.seconds is None:
        return f"{alert.signal}\n{alert.detector}, before any drift"
    return f"{alert.signal}\n{alert.detector} +{delay.predictions} ({delay.seconds:.0f} s)"


def _incidents_cell(delays: Sequence[AlertDelay]) -> str:
    """Two lines: how many alerts, then in how many incidents (``in 1 incident``)."""
    if not delays:
        return "-"
    incidents = len({delay.alert.incident_id for delay in delays})
    return f"{_plural(len(delays), 'alert')}\nin {_plural(incidents, 'incident')}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
