"""Fuzz the worker's edge: 100,000 hostile messages mixed with valid traffic, on real Kafka.

Zero crashes, every bad message on the dead-letter topic with a reason, every valid event
counted, no Redis key outside our prefix, and a bounded log. The numbers are printed
(``pytest -s``).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from confluent_kafka import Producer

from schemas.codec import encode
from schemas.events import LabelEvent, PredictionEvent
from stream_app.local.services.process import wait_until
from stream_app.settings import Settings
from stream_app.topics import Topics
from stream_app.worker_process import WorkerProcess
from tests.conftest import RUN_ID
from tests.hostile import HostileGenerator
from tests.integration.kafka_io import consume
from tests.pipeline import header, live_view, worker_env

HOSTILE = 100_000
VALID_PAIRS = 5_000
SEED = 20261122
NEAR_BROKER_LIMIT = 3
"""Messages of about 1 MiB (the broker's limit): too big to send on whole with the headers."""
MAX_LOG_LINES = 500
"""The worker's log (at INFO) after all of it: bad input is summarised, not logged per message."""

Raw = tuple[str, bytes | None, bytes | None]  # topic, key, value


def valid_traffic(marker: str, now: datetime) -> tuple[list[Raw], Counter[str], Counter[str]]:
    """Predictions and their labels, for models and features with odd but allowed names."""
    models = [f"fz{marker}", f"fz.{marker}-b_c"]
    rng = random.Random(SEED)
    messages: list[Raw] = []
    predictions: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for i in range(VALID_PAIRS):
        model_id = models[i % len(models)]
        at = now - timedelta(seconds=(VALID_PAIRS - i) / 100)  # well within the join TTL
        prediction = PredictionEvent(
            request_id=f"ok-{marker}-{i}",
            model_id=model_id,
            model_version="1",
            timestamp=at,
            features={"x": rng.random(), f"path:{marker}/a b": rng.random(), "city": "a"},
            prediction=int(rng.random() < 0.5),
            score=rng.random(),
        )
        label = LabelEvent(
            request_id=prediction.request_id,
            model_id=model_id,
            timestamp=at + timedelta(seconds=1),
            label=int(rng.random() < 0.5),
        )
        messages.append(("p", prediction.request_id.encode(), encode(prediction)))
        messages.append(("l", label.request_id.encode(), encode(label)))
        predictions[model_id] += 1
        labels[model_id] += 1
    return messages, predictions, labels


def produce(settings: Settings, topics: Topics, messages: list[Raw]) -> None:
    producer = Producer(
        {
            **settings.kafka.client_config(),
            "partitioner": "murmur2_random",  # as EventProducer: keys co-partitioned
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.max.bytes": 2_000_000,
        }
    )
    names = {"p": topics.predictions, "l": topics.labels}
    for topic, key, value in messages:
        while True:
            try:
                producer.produce(names[topic], key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0


def test_hostile_input_is_dead_lettered_and_valid_traffic_counted(
    settings: Settings, topics: Topics, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    marker = f"zq{RUN_ID}"
    now = datetime.now(UTC)
    hostile = list(HostileGenerator(SEED, marker, now).messages(HOSTILE))
    valid, predictions, labels = valid_traffic(marker, now)
    bad: list[Raw] = [("p" if m.is_prediction else "l", m.key, m.value) for m in hostile]
    bad += [("p", f"huge-{i}".encode(), b"x" * 1_040_000) for i in range(NEAR_BROKER_LIMIT)]
    mixed = bad + valid
    random.Random(SEED).shuffle(mixed)

    log_file = tmp_path / "worker.log"
    worker = WorkerProcess(worker_env(settings, tmp_path / "data"), log_file, loglevel="info")
    with worker:
        started = time.monotonic()
        produce(settings, topics, mixed)
        produced = time.monotonic() - started

        def consumed_everything() -> bool:
            assert worker.running, worker.log_tail()
            view = live_view(settings)
            return int(view["_pipeline"].get("deadlettered", 0)) >= len(bad) and all(
                int(view.get(m, {}).get("predictions", 0)) >= n for m, n in predictions.items()
            )

        assert wait_until(consumed_everything, 300, interval=1.0), live_view(settings)
        processed = time.monotonic() - started
        assert worker.running, worker.log_tail()

    view = live_view(settings)
    assert int(view["_pipeline"]["deadlettered"]) == len(bad)
    for model_id in predictions:
        assert int(view[model_id]["predictions"]) == predictions[model_id]
        assert int(view[model_id]["labels"]) == labels[model_id]
        assert int(view[model_id]["joined"]) == labels[model_id]

    dead = consume(settings, [topics.deadletter], expected=len(bad), timeout=180)
    assert len(dead) == len(bad)
    reasons_text = [header(m, "driftstream-reason") for m in dead]
    assert all(text and text.isprintable() for text in reasons_text)  # one clean line each
    sources = {header(m, "driftstream-source") for m in dead}
    assert len(sources) == len(bad)  # each bad message once
    assert Counter(m.key() for m in dead) == Counter(key for _, key, _ in bad)  # no valid one
    truncated = [m for m in dead if "driftstream-truncated" in dict(m.headers() or [])]
    assert len(truncated) == NEAR_BROKER_LIMIT

    foreign = [
        key
        for key in redis_conn.scan_iter(match=f"*{marker}*", count=10_000)
        if not key.startswith(settings.redis.key_prefix.encode())
    ]
    assert foreign == []
    log_lines = log_file.read_text(errors="replace").count("\n")
    assert log_lines < MAX_LOG_LINES

    reasons = Counter(text.split(":")[0] for text in reasons_text)
    print(
        f"\nfuzz: {len(bad):,} hostile + {2 * VALID_PAIRS:,} valid messages; produced in "
        f"{produced:.1f}s, all consumed in {processed:.1f}s "
        f"({len(mixed) / processed:,.0f} messages/s); dead-lettered {len(dead):,}; "
        f"worker log {log_lines} lines"
    )
    print(
        "hostile by category: "
        + ", ".join(f"{c} {n}" for c, n in sorted(Counter(m.category for m in hostile).items()))
    )
    print("dead-letter reasons (field): " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
