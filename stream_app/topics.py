"""The public topics (names from the design) and their creation on the broker."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from stream_app.settings import KafkaSettings, Settings, TopicSettings


class TopicError(RuntimeError):
    """A topic the worker needs cannot be made or used as it is; the message says how to fix it."""


@dataclass(frozen=True)
class Topics:
    """Full topic names for one prefix."""

    prefix: str

    @property
    def predictions(self) -> str:
        return f"{self.prefix}predictions"

    @property
    def labels(self) -> str:
        return f"{self.prefix}labels"

    @property
    def observations(self) -> str:
        return f"{self.prefix}observations"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}deadletter"

    @property
    def inputs(self) -> tuple[str, str]:
        return (self.predictions, self.labels)

    def all(self) -> list[str]:
        return [self.predictions, self.labels, self.observations, self.alerts, self.deadletter]


def repartition_topics(app_id: str, names: Topics) -> dict[str, str]:
    """The Kafka-native worker's internal topics of the inputs by request id: input topic ->
    its repartition topic (one per side, so each stays in its producers' order)."""
    return {topic: f"{app_id}-{topic[len(names.prefix) :]}-repartition" for topic in names.inputs}


def store_topics(app_id: str) -> tuple[str, str]:
    """The Kafka-native worker's join store's and detect store's changelog topics."""
    return f"{app_id}-join-store", f"{app_id}-detect-store"


def app_id(settings: Settings) -> str:
    """The worker's consumer group (and Faust app id), the prefix of its internal topics."""
    return settings.worker.app_id or f"{settings.topics.prefix}worker"


def ensure_topics(kafka: KafkaSettings, topics: TopicSettings, timeout: float = 30.0) -> Topics:
    """Create every public topic that does not exist yet, all with the configured partitions
    (those that exist keep theirs), and wait until the broker's metadata shows them."""
    names = Topics(topics.prefix)
    wanted = dict.fromkeys(names.all(), topics.partitions)
    create_topics(kafka, wanted, topics.replication_factor, timeout=timeout)
    return names


def require_copartitioned(inputs: dict[str, int], partitions: int, why: str) -> None:
    """Raise :class:`TopicError` unless the ``inputs`` (name -> partitions) all have
    ``partitions``; ``why`` says who needs it."""
    if set(inputs.values()) != {partitions}:
        raise TopicError(
            f"{' and '.join(inputs)} have {inputs} partitions: {why} needs them co-partitioned "
            f"({partitions} each)"
        )


def create_topics(
    kafka: KafkaSettings,
    wanted: dict[str, int],
    replication_factor: int,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, int]:
    """Create the topics of ``wanted`` (name -> partitions) that do not exist yet, wait until
    the broker's metadata shows them all, and return their partition counts."""
    quiet: dict[str, Any] = {"error_cb": lambda _error: None}
    admin = AdminClient({**kafka.client_config(), **quiet})
    existing = _partition_counts(admin, timeout)
    missing = [
        NewTopic(name, n, replication_factor, config=config or {})
        for name, n in wanted.items()
        if name not in existing
    ]
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicError(f"could not create topic {name}: {exc}") from exc
    deadline = time.monotonic() + timeout
    while not wanted.keys() <= existing.keys():
        if time.monotonic() > deadline:
            raise TopicError(f"topics {sorted(wanted.keys() - existing.keys())} did not appear")
        time.sleep(0.1)
        existing = _partition_counts(admin, timeout)
    return {name: existing[name] for name in wanted}


def partition_counts(kafka: KafkaSettings, timeout: float = 30.0) -> dict[str, int]:
    """Every topic's partition count."""
    quiet: dict[str, Any] = {"error_cb": lambda _error: None}
    return _partition_counts(AdminClient({**kafka.client_config(), **quiet}), timeout)


def _partition_counts(admin: AdminClient, timeout: float) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise RuntimeError(f"Kafka did not answer a metadata request: {exc}") from exc
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def delete_topics(kafka: KafkaSettings, prefix: str, timeout: float = 30.0) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (internal ones included); return
    their names. For throwaway prefixes only: the demo's and the tests'."""
    if not prefix:
        raise ValueError("an empty prefix would delete every topic")
    quiet: dict[str, Any] = {"error_cb": lambda _error: None}
    admin = AdminClient({**kafka.client_config(), **quiet})
    ours = sorted(name for name in _partition_counts(admin, timeout) if name.startswith(prefix))
    if ours:
        for future in admin.delete_topics(ours, operation_timeout=timeout).values():
            future.result()
    return ours
