"""``driftstream demo``: the whole product, end to end, on local services.

Brings up Kafka and Redis (unless they answer already), starts a worker on topics of its own,
simulates three models (``stable``, ``fraud`` with abrupt concept drift, ``churn`` with data
drift only), shows progress and every alert as it arrives, waits for the worker to catch up,
prints a summary scored against the simulator's truth, and stops what it started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from producers.kafka_producer import EventProducer
from producers.pacing import paced
from producers.simulator import ModelTraffic, simulate
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.alerts_feed import format_alert, read_alerts
from stream_app.live_state import LiveStateKeys, read_live_state
from stream_app.services import local_services, services_up
from stream_app.services.process import wait_until
from stream_app.services.redis import redis_client
from stream_app.settings import Settings, TopicSettings
from stream_app.topics import ensure_topics
from stream_app.worker_process import WorkerProcess

Event = PredictionEvent | LabelEvent


@dataclass(frozen=True)
class ModelScore:
    """One model's outcome in the demo, scored against the simulator's truth."""

    model_id: str
    scenario: str
    accuracy_before: float | None
    accuracy_after: float | None
    alerts: list[DriftAlert]
    first_alert_delay: int | None  # labelled (concept) or all (data) predictions after the start


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
    models: Sequence[ModelTraffic], events: Sequence[Event], alerts: Sequence[DriftAlert]
) -> list[ModelScore]:
    """Accuracy before/after each true drift start, and how late the first alert came."""
    first = min(e.timestamp for e in events)
    last = max(e.timestamp for e in events)
    labelled = {e.request_id for e in events if isinstance(e, LabelEvent)}
    scores = []
    for model in models:
        truth = model.truth
        mine = [a for a in alerts if a.model_id == model.model_id]
        start = truth.drift_start_time
        split = start or first + (last - first) / 2
        delay = None
        if start is not None and mine:
            alert = min(mine, key=lambda a: a.detected_at)
            delay = sum(
                1
                for e in events
                if isinstance(e, PredictionEvent)
                and e.model_id == model.model_id
                and start <= e.timestamp <= alert.event_time
                and (alert.kind == "data" or e.request_id in labelled)
            )
        scores.append(
            ModelScore(
                model_id=model.model_id,
                scenario=str(truth.scenario),
                accuracy_before=accuracy(events, model.model_id, first, split),
                accuracy_after=accuracy(events, model.model_id, split, last),
                alerts=mine,
                first_alert_delay=delay,
            )
        )
    return scores


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


def _progress_table(view: dict[str, dict[str, object]], sent: int, total: int) -> Table:
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


def run_demo(console: Console, duration: float, rate: float, seed: int) -> list[ModelScore]:
    """Run the demo; returns the per-model scores (after printing everything)."""
    base = Settings()
    statuses = services_up(base, lambda m: console.print(f"[dim]·[/dim] {m}"))
    for status in statuses:
        console.print(f"[dim]·[/dim] {status.name} on {status.address}: {status.state}")
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    settings = demo_settings(base, run_id)
    topics = ensure_topics(settings.kafka, settings.topics)
    per_prediction = demo_models(1, seed)[0].labels.events_per_prediction
    n_predictions = max(500, round(duration * rate / (3 * per_prediction)))
    models = demo_models(n_predictions, seed)
    log_file = base.services.state_dir / f"demo-worker-{run_id}.log"
    worker = WorkerProcess(
        {
            "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix,
            "DRIFTSTREAM_REDIS__KEY_PREFIX": settings.redis.key_prefix,
            "DRIFTSTREAM_WORKER__DATA_DIR": str(base.worker.data_dir / f"demo-{run_id}"),
        },
        log_file,
    )
    console.print(f"[dim]·[/dim] worker log: {log_file}")
    events: list[Event] = []
    keys = LiveStateKeys(settings.redis.key_prefix)
    try:
        with (
            worker,
            AlertWatcher(settings, console) as watcher,
            redis_client(settings.redis, decode_responses=True) as client,
        ):
            stream = list(simulate(models))
            with (
                EventProducer(settings.kafka, topics) as producer,
                Live(console=console, refresh_per_second=2, transient=True) as live,
            ):
                shown = 0.0
                for event in paced(stream, rate):
                    producer.send(event)
                    events.append(event)
                    if time.monotonic() - shown > 0.5:
                        view = read_live_state(client, keys)
                        live.update(_progress_table(view, len(events), len(stream)))
                        shown = time.monotonic()
                        if not worker.running:
                            raise RuntimeError(f"the worker stopped:\n{worker.log_tail()}")
            labelled = {e.request_id for e in events if isinstance(e, LabelEvent)}
            expected = len(labelled)
            console.print(f"[dim]·[/dim] all {len(events)} events sent; waiting for the worker")

            def caught_up() -> bool:
                view = read_live_state(client, keys)
                return sum(int(v.get("joined", 0)) for m, v in view.items() if m[0] != "_") >= (
                    expected
                )

            wait_until(caught_up, timeout=120, interval=1.0)
            wait_until(
                lambda: (
                    len(watcher.alerts)
                    >= sum(
                        int(v.get("alerts", 0))
                        for m, v in read_live_state(client, keys).items()
                        if m[0] != "_"
                    )
                ),
                timeout=10,
            )
            console.print(_progress_table(read_live_state(client, keys), len(events), len(stream)))
            alerts = list(watcher.alerts)
    finally:
        started = {s.name for s in statuses if s.state == "started"}
        for service in local_services(base):
            if service.name in started:
                service.down()
                console.print(f"[dim]·[/dim] stopped {service.name}, which the demo started")
    scores = score(models, events, alerts)
    console.print(_summary_table(scores))
    if started:
        console.print("To look around afterwards, start `driftstream services up` first.")
    else:
        console.print(
            f"Inspect this run: DRIFTSTREAM_TOPICS__PREFIX={settings.topics.prefix} "
            f"DRIFTSTREAM_REDIS__KEY_PREFIX={settings.redis.key_prefix} driftstream state",
            markup=False,
            soft_wrap=True,
        )
    return scores


def _summary_table(scores: Sequence[ModelScore]) -> Table:
    table = Table(title="driftstream demo: what happened", title_justify="left")
    for column in (
        "model",
        "scenario",
        "accuracy before",
        "accuracy after",
        "alerts",
        "first alert after the drift start",
    ):
        table.add_column(column)
    for s in scores:
        alerts = ", ".join(sorted({f"{a.kind}:{a.signal}/{a.detector}" for a in s.alerts})) or "-"
        delay = "-" if s.first_alert_delay is None else f"{s.first_alert_delay} predictions"
        table.add_row(
            s.model_id,
            s.scenario,
            _fraction(s.accuracy_before),
            _fraction(s.accuracy_after),
            alerts,
            delay,
        )
    return table


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
