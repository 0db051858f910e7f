"""Helpers for tests that run the whole pipeline: start workers, send events, read the truth
back from the real topics and Redis."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from detectors.bank import SILENCE_DETECTOR
from detectors.join_buffer import JoinedOutcome
from pipeline.backtest import Backtest
from pipeline.observations import decode_observation
from producers.kafka_producer import EventProducer
from producers.pacing import paced
from schemas.codec import decode
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.reader import read_live_state
from stream_app.local.services.process import wait_until
from stream_app.preflight import redis_client
from stream_app.processors import replay_of
from stream_app.settings import Engine, Settings
from stream_app.topics import Topics
from stream_app.worker_process import WorkerProcess
from tests.integration.kafka_io import consume_to_end

Event = PredictionEvent | LabelEvent


def worker_env(settings: Settings, data_dir: Path, engine: Engine = "kafka") -> dict[str, str]:
    """The environment that points a worker subprocess of ``engine`` at ``settings``' services
    and names, and gives it the per-model detector settings."""
    return {
        "DRIFTSTREAM_DETECTORS__MODELS": json.dumps(settings.detectors.models),
        "DRIFTSTREAM_WORKER__ENGINE": engine,
        "DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "DRIFTSTREAM_REDIS__URL": settings.redis.url,
        "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix,
        "DRIFTSTREAM_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "DRIFTSTREAM_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "DRIFTSTREAM_WORKER__DATA_DIR": str(data_dir),
        "DRIFTSTREAM_JOIN__TTL_SECONDS": str(settings.join.ttl_seconds),
        "DRIFTSTREAM_JOIN__REPARTITION": str(settings.join.repartition).lower(),
        "DRIFTSTREAM_WORKER__WALL_CLOCK_SILENCE": str(settings.worker.wall_clock_silence).lower(),
        "DRIFTSTREAM_WORKER__METRICS_PORT": "0",
        "DRIFTSTREAM_WORKER__BATCH_SIZE": str(settings.worker.batch_size),
        "DRIFTSTREAM_WORKER__MAX_HELD_RECORDS": str(settings.worker.max_held_records),
        "DRIFTSTREAM_WORKER__SESSION_TIMEOUT_SECONDS": "10",  # a killed worker's share moves soon
    }


def worker_ready(log_text: str) -> bool:
    """Whether a worker's log says it is ready: Faust's worker line, or the Kafka-native
    runtime's after its first assignment was restored."""
    return "Worker]: Ready" in log_text or "worker ready:" in log_text


class WorkerPool:
    """Starts workers of one runtime for one set of settings (each logging to its own file);
    stops them all on exit."""

    def __init__(self, settings: Settings, folder: Path, engine: Engine) -> None:
        self.settings = settings
        self.folder = folder
        self.engine = engine
        self.started: list[WorkerProcess] = []

    def start(self, instance: str | None = None) -> WorkerProcess:
        """A new worker; ``instance``: its ``worker.instance_id`` (a restart under the same
        name takes the place of the one before it)."""
        n = len(self.started)
        env = worker_env(self.settings, self.folder / f"data-{n}", self.engine)
        if instance is not None:
            env["DRIFTSTREAM_WORKER__INSTANCE_ID"] = f"{self.settings.topics.prefix}{instance}"
        log = self.folder / f"worker-{n}.log"
        worker = WorkerProcess(env, log, loglevel="info")  # rebalances and recovery steps too
        self.started.append(worker.start())
        return worker

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        for worker in self.started:
            worker.stop()


def send(settings: Settings, topics: Topics, events: Iterable[Event]) -> None:
    with EventProducer(settings.kafka, topics) as producer:
        for event in events:
            producer.send(event)


@contextmanager
def sending(settings: Settings, topics: Topics, events: list[Event], rate: float) -> Iterator[None]:
    """Send ``events`` at ``rate`` per second from a thread while the block runs (so a fault
    lands mid-stream however fast the worker is); at the end, wait until all were sent."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            send(settings, topics, paced(events, rate))
        except BaseException as exc:  # handed to the test below
            failures.append(exc)

    thread = threading.Thread(target=run, name="sender", daemon=True)
    thread.start()
    yield
    thread.join(timeout=len(events) / rate + 120)
    assert not thread.is_alive(), "the sender did not finish"
    if failures:
        raise failures[0]


def live_view(settings: Settings) -> dict[str, dict[str, Any]]:
    with redis_client(settings.redis, decode_responses=True) as client:
        return read_live_state(client, LiveStateKeys(settings.redis.key_prefix))


def status_beside_silence(state: dict[str, Any]) -> str:
    """A model's status in the live view, its silence left out: ``drift`` if a detector other
    than the ``volume`` signal's ``silence`` is in drift (a stream that ends goes silent: on
    the Kafka-native runtime, by the wall clock once it is idle)."""
    drifting = (
        status == "drift"
        for name, signal in state.get("signals", {}).items()
        for detector, status in signal["detectors"].items()
        if (name, detector) != ("volume", SILENCE_DETECTOR)
    )
    return "drift" if any(drifting) else "ok"


def wait_for_joined(
    settings: Settings, worker: WorkerProcess, expected: dict[str, int], timeout: float = 180
) -> dict[str, dict[str, Any]]:
    """Wait until Redis shows at least ``expected`` joined outcomes per model, each applied
    by the detectors (the detect stage lags the join by the observations hop and the
    event-time hold: a worker stopped before it caught up leaves its alerts to the next)."""

    def done() -> bool:
        assert worker.running, worker.log_tail()
        view = live_view(settings)
        return all(
            int(view.get(m, {}).get(field, 0)) >= n
            for m, n in expected.items()
            for field in ("joined", "outcomes_applied")
        )

    assert wait_until(done, timeout, interval=0.5), live_view(settings)
    return live_view(settings)


def outcome_ids(settings: Settings, topics: Topics) -> list[str]:
    """The request ids of every joined outcome on the observations topic now."""
    return joined_request_ids(consume_to_end(settings, [topics.observations]))


def joined_request_ids(messages: list[Message]) -> list[str]:
    """The request ids of the joined outcomes among ``observations`` messages."""
    return [
        observation.request_id
        for message in messages
        if isinstance(observation := decode_observation(message.value() or b""), JoinedOutcome)
    ]


def labelled_requests(events: list[Event], model_id: str) -> set[str]:
    predicted = {e.request_id for e in events if isinstance(e, PredictionEvent)}
    return {
        e.request_id
        for e in events
        if isinstance(e, LabelEvent) and e.model_id == model_id and e.request_id in predicted
    }


def labelled_between(events: list[Event], model_id: str, start: datetime, end: datetime) -> int:
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


def published_alerts(settings: Settings) -> list[DriftAlert]:
    """The alerts on the alerts topic: read to its end, and on until there are as many as the
    live view counts (a Faust worker counts an alert as it hands it to its producer)."""
    view = live_view(settings)
    counted = sum(int(state.get("alerts", 0)) for key, state in view.items() if key != "_pipeline")
    topic = Topics(settings.topics.prefix).alerts
    return alerts_of(consume_to_end(settings, [topic], until=lambda got: len(got) >= counted))


def alert_facts(alerts: Iterable[DriftAlert]) -> list[tuple[str, str, str]]:
    """What tells alerts apart beyond their ids (which count per detector): when they were
    stamped and detected, sorted."""
    return sorted((a.alert_id, a.event_time.isoformat(), a.detected_at.isoformat()) for a in alerts)


def beside_silences(
    alerts: Iterable[DriftAlert],
    replayed: Iterable[DriftAlert],
    idle: Iterable[DriftAlert] = (),
) -> tuple[list[DriftAlert], list[DriftAlert]]:
    """A runtime's alerts and the replay's without their silences (detector ``silence``),
    having checked that each silence the runtime raised is one the replay raised, or one of
    ``idle`` (:func:`silences_when_idle`), the same.

    A silence is revealed by the event-time clock of the model's ``observations`` partition:
    the replay, one stream, reveals every one; a runtime those whose partition holds another
    model still sending (or the model's own next prediction), and, with a wall clock, those of
    models still sending when the stream went idle."""
    runtime, offline = list(alerts), list(replayed)
    heard = {a.alert_id: a for a in [*offline, *idle] if a.detector == SILENCE_DETECTOR}
    silent = [a for a in runtime if a.detector == SILENCE_DETECTOR]
    assert all(heard.get(a.alert_id) == a for a in silent), (silent, heard)
    return (
        [a for a in runtime if a.detector != SILENCE_DETECTOR],
        [a for a in offline if a.detector != SILENCE_DETECTOR],
    )


def incidents(alerts: Iterable[DriftAlert]) -> dict[str, str | None]:
    """Each alert's id -> the id of its incident."""
    return {a.alert_id: a.incident_id for a in alerts}


def replayed_alerts(settings: Settings, events: Iterable[Event]) -> list[DriftAlert]:
    """The alerts the offline replay of ``events`` raises under ``settings``, in order."""
    return _replayed(settings, events).alerts


def silences_when_idle(settings: Settings, events: Iterable[Event]) -> list[DriftAlert]:
    """The silences that the replay of ``events`` has not revealed at their end, as a wall
    clock reveals them when the stream then stays idle (the Kafka-native runtime's
    :mod:`~stream_app.runtimes.kafka.clock_watch`): every model whose silence gap is known."""
    never = datetime.max.replace(tzinfo=UTC)
    models = _replayed(settings, events).detect.models.values()
    return [alert for model in models for alert in model.bank.advance(never)]


def _replayed(settings: Settings, events: Iterable[Event]) -> Backtest:
    replay = replay_of(settings)
    for event in events:
        replay.process(event)
    replay.finish()
    return replay
