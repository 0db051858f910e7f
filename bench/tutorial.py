"""The Python ceiling: the "tutorial" drift detector, a bare confluent-kafka loop.

It consumes predictions and labels, parses them with ``json.loads`` (no validation), joins
them in two dicts, updates one river ADWIN per model with the 0/1 error and produces an alert
when it fires. No state recovery, no dead letters, no data-drift signals, no live view: what
a hand-written loop does at best on this machine, the bar driftstream is measured against.
"""

from __future__ import annotations

import json
import resource
import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Producer
from river import drift

from stream_app.settings import Settings
from stream_app.topics import Topics


@dataclass(frozen=True)
class LoopResult:
    """Pairs joined, seconds from the first message consumed to the last pair joined, and the
    CPU seconds the loop used meanwhile (its process's user + system time)."""

    pairs: int
    seconds: float
    cpu_seconds: float
    alerts: int


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_tutorial(
    settings: Settings, topics: Topics, alerts_topic: str, pairs: int, timeout: float
) -> LoopResult:
    """Join ``pairs`` pre-loaded pairs from the beginning of the input topics."""
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"tutorial-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({**settings.kafka.client_config(), "linger.ms": 20})
    consumer.subscribe([topics.predictions, topics.labels])
    pending_predictions: dict[str, dict[str, Any]] = {}
    pending_labels: dict[str, dict[str, Any]] = {}
    detectors: dict[str, drift.ADWIN] = {}
    joined = alerts = 0
    first = cpu_first = 0.0
    deadline = time.monotonic() + timeout
    try:
        while joined < pairs and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    continue
                if not first:
                    first, cpu_first = time.perf_counter(), _cpu()
                event = json.loads(message.value() or b"")
                request_id = event["request_id"]
                if message.topic() == topics.predictions:
                    prediction, label = event, pending_labels.pop(request_id, None)
                    if label is None:
                        pending_predictions[request_id] = event
                        continue
                else:
                    prediction, label = pending_predictions.pop(request_id, None), event
                    if prediction is None:
                        pending_labels[request_id] = event
                        continue
                joined += 1
                model_id = prediction["model_id"]
                detector = detectors.get(model_id)
                if detector is None:
                    detector = detectors[model_id] = drift.ADWIN()  # type: ignore[no-untyped-call]
                detector.update(float(prediction["prediction"] != label["label"]))  # type: ignore[no-untyped-call]
                if detector.drift_detected:
                    alerts += 1
                    alert = {"model_id": model_id, "detector": "adwin", "at": label["timestamp"]}
                    producer.produce(alerts_topic, key=model_id, value=json.dumps(alert))
                    producer.poll(0)
        seconds, cpu = time.perf_counter() - first, _cpu() - cpu_first
        producer.flush(30)
    finally:
        consumer.close()
    return LoopResult(joined, seconds, cpu, alerts)
