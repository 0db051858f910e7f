"""The stream worker on real Kafka and Redis, fed by the simulator (and by hostile input)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Message, Producer

from detectors.backtest import Backtest
from detectors.config import DetectorConfig
from detectors.join import JoinedOutcome
from producers.kafka_producer import EventProducer
from producers.simulator import ModelTraffic, simulate
from schemas.codec import decode, encode
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.live_state import LiveStateKeys, read_live_state
from stream_app.observations import decode_observation
from stream_app.services.process import wait_until
from stream_app.services.redis import redis_client
from stream_app.settings import Settings
from stream_app.topics import Topics
from stream_app.worker_process import WorkerProcess
from tests.integration.kafka_io import consume

MAX_LABELLED_DELAY = 1000
"""A concept drift must be alerted within this many labelled events after it starts."""


def worker_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    return {
        "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix,
        "DRIFTSTREAM_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "DRIFTSTREAM_WORKER__DATA_DIR": str(data_dir),
    }


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    """Start workers for this test's topics; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(worker_env(settings, tmp_path / "data"), tmp_path / "worker.log")
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


def send(settings: Settings, topics: Topics, events: list[PredictionEvent | LabelEvent]) -> None:
    with EventProducer(settings.kafka, topics) as producer:
        for event in events:
            producer.send(event)


def live_view(settings: Settings) -> dict[str, dict[str, Any]]:
    with redis_client(settings.redis, decode_responses=True) as client:
        return read_live_state(client, LiveStateKeys(settings.redis.key_prefix))


def wait_for_joined(
    settings: Settings, worker: WorkerProcess, expected: dict[str, int], timeout: float = 180
) -> dict[str, dict[str, Any]]:
    """Wait until Redis shows at least ``expected`` joined outcomes per model."""

    def done() -> bool:
        assert worker.running, worker.log_tail()
        view = live_view(settings)
        return all(int(view.get(m, {}).get("joined", 0)) >= n for m, n in expected.items())

    assert wait_until(done, timeout, interval=0.5), live_view(settings)
    return live_view(settings)


def outcome_ids(settings: Settings, topics: Topics) -> list[str]:
    """The request ids of every joined outcome on the observations topic."""
    observations = consume(settings, [topics.observations])
    return [
        observation.request_id
        for message in observations
        if isinstance(observation := decode_observation(message.value() or b""), JoinedOutcome)
    ]


def labelled_requests(events: list[PredictionEvent | LabelEvent], model_id: str) -> set[str]:
    predicted = {e.request_id for e in events if isinstance(e, PredictionEvent)}
    return {
        e.request_id
        for e in events
        if isinstance(e, LabelEvent) and e.model_id == model_id and e.request_id in predicted
    }


def labelled_between(
    events: list[PredictionEvent | LabelEvent], model_id: str, start: datetime, end: datetime
) -> int:
    labelled = labelled_requests(events, model_id)
    return sum(
        1
        for e in events
        if isinstance(e, PredictionEvent)
        and e.model_id == model_id
        and e.request_id in labelled
        and start <= e.timestamp <= end
    )


def header(message: Message, name: str) -> str:
    value = dict(message.headers() or []).get(name)
    assert isinstance(value, bytes), f"no {name} header"
    return value.decode()


def alerts_of(messages: list[Message]) -> list[DriftAlert]:
    return [decode(DriftAlert, m.value() or b"") for m in messages]


def test_drift_alerts_live_state_and_dead_letters(
    settings: Settings,
    topics: Topics,
    start_worker: Callable[[], WorkerProcess],
    redis_conn: redis.Redis,
) -> None:
    models = [
        ModelTraffic("stable", "stable", 3000, seed=1),
        ModelTraffic("fraud", "abrupt", 3000, seed=2, drift_at=1500),
        ModelTraffic("churn", "data-drift", 3000, seed=3, drift_at=1500),
    ]
    events = list(simulate(models))
    truth = {m.model_id: m.truth for m in models}
    future_label = LabelEvent(
        request_id="r-future", model_id="fraud", timestamp=datetime(2099, 1, 1, tzinfo=UTC), label=1
    )
    bad = [
        (topics.predictions, b"r-bad-1", b"{not json"),
        (topics.predictions, b"r-bad-2", b'{"request_id": "r-bad-2", "model_id": "fraud"}'),
        (topics.labels, b"r-bad-3", b'{"schema_version": 9, "request_id": "r-bad-3"}'),
        (
            topics.labels,
            b"someone-else",
            encode(next(e for e in events if isinstance(e, LabelEvent))),
        ),
        (topics.predictions, b"r-big", b'{"x": "' + b"a" * 70_000 + b'"}'),
        (topics.labels, b"r-future", encode(future_label)),
    ]
    producer = Producer(settings.kafka.client_config())
    for topic, key, value in bad[:3]:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    worker = start_worker()
    send(settings, topics, events)
    for topic, key, value in bad[3:]:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    expected = {m: len(labelled_requests(events, m)) for m in truth}
    wait_for_joined(settings, worker, expected)

    def detected_all() -> bool:  # the detection stage has seen every outcome
        view = live_view(settings)
        seen = {m: view[m].get("signals", {}).get("error_rate", {}).get("n", 0) for m in truth}
        return all(seen[m] >= n for m, n in expected.items())

    assert wait_until(detected_all, 60), live_view(settings)
    view = live_view(settings)

    for model_id, model_truth in truth.items():
        state = view[model_id]
        assert int(state["predictions"]) == model_truth.predictions
        assert int(state["labels"]) == model_truth.labels + model_truth.duplicate_labels
        assert int(state.get("duplicate_labels", 0)) == model_truth.duplicate_labels
        assert int(state["joined"]) == expected[model_id]
        assert state["status"] in ("ok", "warning", "drift")
    assert wait_until(
        lambda: int(live_view(settings)["_pipeline"].get("deadlettered", 0)) == len(bad), 30
    ), live_view(settings)["_pipeline"]

    dead = consume(settings, [topics.deadletter], expected=len(bad))
    reasons = {m.key(): header(m, "driftstream-reason") for m in dead}
    assert sorted(k or b"" for k in reasons) == sorted(key for _, key, _ in bad)
    assert "Invalid JSON" in reasons[b"r-bad-1"]
    assert "model_version" in reasons[b"r-bad-2"]
    assert "schema_version" in reasons[b"r-bad-3"]
    assert "does not match the message key" in reasons[b"someone-else"]
    assert "byte limit" in reasons[b"r-big"]
    assert "ahead of this worker's clock" in reasons[b"r-future"]

    alerts = alerts_of(consume(settings, [topics.alerts]))
    by_model = {m: [a for a in alerts if a.model_id == m] for m in truth}
    assert by_model["stable"] == []

    fraud_start = truth["fraud"].drift_start_time
    assert fraud_start is not None
    concept = [a for a in by_model["fraud"] if a.kind == "concept"]
    assert concept, by_model["fraud"]
    first = min(concept, key=lambda a: a.detected_at)  # when the label that revealed it came
    assert first.detected_at >= fraud_start
    delay = labelled_between(events, "fraud", fraud_start, first.event_time)
    assert delay <= MAX_LABELLED_DELAY
    print(f"abrupt: concept alert {delay} labelled events after the drift start")

    churn_start = truth["churn"].drift_start_time
    assert churn_start is not None
    data = [a for a in by_model["churn"] if a.kind == "data"]
    assert data, by_model["churn"]
    assert min(a.event_time for a in data) >= churn_start
    assert [a for a in by_model["churn"] if a.kind == "concept"] == []

    assert len({a.alert_id for a in alerts}) == len(alerts)
    replayed = Backtest(
        ttl_seconds=settings.join.ttl_seconds,
        max_pending=settings.join.max_pending,
        config=DetectorConfig.from_settings(settings.detectors),
    )
    for event in events:
        replayed.process(event)
    assert sorted(a.alert_id for a in replayed.alerts) == sorted(a.alert_id for a in alerts)
    assert redis_conn.xlen(f"{settings.redis.key_prefix}alerts") == len(alerts)


def test_restart_neither_duplicates_nor_misses_outcomes(
    settings: Settings, topics: Topics, start_worker: Callable[[], WorkerProcess]
) -> None:
    model = ModelTraffic("fraud", "abrupt", 4000, seed=5, drift_at=1000)
    events = list(simulate([model]))
    half = len(events) // 2
    worker = start_worker()
    send(settings, topics, events[:half])
    wait_for_joined(settings, worker, {"fraud": 200})
    assert worker.stop() == 0, worker.log_tail()

    worker = start_worker()
    send(settings, topics, events[half:])
    expected = labelled_requests(events, "fraud")
    ids: list[str] = []

    def all_joined() -> bool:
        assert worker.running, worker.log_tail()
        ids[:] = outcome_ids(settings, topics)
        return len(set(ids)) >= len(expected)

    assert wait_until(all_joined, 180, interval=1.0), f"{len(set(ids))} of {len(expected)}"
    assert len(ids) == len(set(ids)), "an outcome was emitted twice"
    assert set(ids) == expected
    alerts = alerts_of(consume(settings, [topics.alerts]))
    assert alerts, "the abrupt drift was not alerted"
    assert len({a.alert_id for a in alerts}) == len(alerts)
