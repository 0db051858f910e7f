"""Reading the alerts topic: what ``driftstream alerts`` prints and the demo shows live."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer

from schemas.codec import decode
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert
from stream_app.settings import Settings
from stream_app.topics import Topics


def read_alerts(
    settings: Settings,
    *,
    follow: bool,
    idle_seconds: float = 3.0,
    stop: threading.Event | None = None,
) -> Iterator[DriftAlert | InvalidEvent]:
    """Alerts from the beginning of the topic, in order; invalid records as ``InvalidEvent``.

    Without ``follow`` it ends after ``idle_seconds`` with no new alert; with ``follow`` it
    ends when ``stop`` is set (or never).
    """
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"driftstream-alerts-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([Topics(settings.topics.prefix).alerts])
    try:
        while stop is None or not stop.is_set():
            message = consumer.poll(0.5 if follow else idle_seconds)
            if message is None:
                if follow:
                    continue
                return
            if message.error() is not None:
                continue
            try:
                yield decode(DriftAlert, message.value() or b"")
            except InvalidEvent as exc:
                yield exc
    finally:
        consumer.close()


def format_alert(alert: DriftAlert) -> str:
    """One line per alert, for people."""
    return (
        f"{alert.event_time:%Y-%m-%d %H:%M:%S} {alert.severity.upper():8} {alert.model_id} "
        f"{alert.kind} drift on {alert.signal} ({alert.detector}): mean {alert.before.mean:.3f} "
        f"-> {alert.after.mean:.3f} [{alert.alert_id[:12]}]"
    )
