"""The Kafka-native runtime's clients: which topics the worker reads and writes
(:class:`Layout`), how its consumer and transactional producer are configured, and what their
errors become (:class:`ClientErrors`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from stream_app.sampled_log import SampledLog
from stream_app.settings import Settings
from stream_app.topics import Topics, app_id, repartition_topics, store_topics

log = logging.getLogger(__name__)

UNREADABLE = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED}
"""Errors that mean the worker cannot read a topic it should."""
FETCH_BYTES_PER_PARTITION = 64 * 1024
"""Small fetches per partition: a batch holds every partition's records of about the same time
(the stages merge them by event time), not one partition's long run, and observations come
with every fetch however large the join's backlog."""


@dataclass
class Layout:
    """The worker's topics: the public ones (``names``), the repartition topics of the inputs
    (none without ``join.repartition``) and the two changelog stores."""

    names: Topics
    app_id: str
    repartition: bool
    join_store: str = field(init=False)
    detect_store: str = field(init=False)
    repartitions: dict[str, str] = field(init=False)
    """Input topic -> its repartition topic."""
    input_of: dict[str, str] = field(init=False)
    """Repartition topic -> the input topic it moves."""
    join_topic: str = field(init=False)
    """The topic whose partitions own the join buffers and the join store's partitions."""
    outputs: dict[str, str] = field(init=False)
    """The processors' logical output streams -> their topics."""

    def __post_init__(self) -> None:
        self.join_store, self.detect_store = store_topics(self.app_id)
        self.repartitions = repartition_topics(self.app_id, self.names) if self.repartition else {}
        self.input_of = {moved: topic for topic, moved in self.repartitions.items()}
        self.join_topic = self.repartitions.get(self.names.predictions, self.names.predictions)
        self.outputs = {
            "observations": self.names.observations,
            "alerts": self.names.alerts,
            "deadletter": self.names.deadletter,
        }

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        return cls(Topics(settings.topics.prefix), app_id(settings), settings.join.repartition)

    @property
    def reading(self) -> list[str]:
        """Every topic the consumer subscribes to."""
        return [*self.names.inputs, *self.repartitions.values(), self.names.observations]


def consumer_config(settings: Settings, group: str, errors: ClientErrors) -> dict[str, Any]:
    """The consumer: one group member (a static one when the worker has an ``instance_id``),
    range assignment (co-partitioned inputs together), ``read_committed``, offsets committed
    only through the producer's transactions."""
    session_ms = int(settings.worker.session_timeout_seconds * 1000)
    instance = settings.worker.instance_id
    return {
        **settings.kafka.client_config(),
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(1000, session_ms // 10),
        "max.poll.interval.ms": max(300_000, session_ms),
        "max.partition.fetch.bytes": FETCH_BYTES_PER_PARTITION,
        "error_cb": errors.client_error,
        **({"group.instance.id": instance} if instance else {}),
    }


def make_consumer(settings: Settings, group: str, errors: ClientErrors) -> Consumer:
    return Consumer(consumer_config(settings, group, errors))


def producer_config(
    settings: Settings, transactional_id: str, errors: ClientErrors
) -> dict[str, Any]:
    """The transactional producer
    (:class:`~stream_app.runtimes.kafka.transactions.TransactionalProducer`)."""
    return {
        **settings.kafka.client_config(),
        "transactional.id": transactional_id,
        "transaction.timeout.ms": int(settings.worker.transaction_timeout_seconds * 1000),
        "linger.ms": 5,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "error_cb": errors.client_error,
    }


class ClientErrors:
    """What the clients' errors become: a read refused (a missing topic, an ACL denial) is an
    ERROR (sampled) counted in ``unreadable_topic`` by the loop (:meth:`take_unreadable`); a
    refused login and fatal errors are ERRORs; the rest INFO (librdkafka recovers from them)."""

    def __init__(self) -> None:
        self.unreadable_log = SampledLog(log, "cannot read", 30.0, logging.ERROR)
        self.unreadable = 0  # refused reads since the loop last counted them (any thread)

    def client_error(self, error: KafkaError) -> None:
        """The clients' ``error_cb`` (called in their threads)."""
        if error.code() in UNREADABLE:  # e.g. a topic deleted under the worker
            self.refused("a topic", error.str())
        elif error.code() == KafkaError._AUTHENTICATION:
            log.error("Kafka refused the login: %s", error.str())
        elif error.fatal():
            log.error("Kafka client fatal error: %s", error.str())
        else:
            log.info("Kafka client: %s", error.str())

    def message_error(self, message: Message) -> None:
        """A consumed message that is an error."""
        error = message.error()
        assert error is not None
        if error.code() in UNREADABLE:
            self.refused(str(message.topic()), error.str())
        else:
            log.warning("consumer: %s", error.str())

    def refused(self, topic: str, reason: str) -> None:
        self.unreadable_log.record(topic, f"{reason} (missing, deleted or not allowed: ACLs)")
        self.unreadable += 1

    def take_unreadable(self) -> int:
        n, self.unreadable = self.unreadable, 0
        return n


def describe(partitions: list[TopicPartition]) -> str:
    """Partitions for a log line: ``topic [0, 1]; other [3]``."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{t} {sorted(ps)}" for t, ps in sorted(by_topic.items())) or "nothing"
