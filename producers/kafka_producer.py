"""Publish predictions and labels to Kafka, keyed by request_id, with every delivery accounted.

Usage (``stream_app.topics.ensure_topics`` creates the co-partitioned topics first)::

    topics = ensure_topics(settings.kafka, settings.topics)
    with EventProducer(settings.kafka, topics) as producer:  # raises DeliveryError on failures
        producer.send(prediction_event)

The producer sits below ``stream_app`` (docs/architecture.md, "Layers"): it names what it needs
of the application's settings and topics as protocols (:class:`KafkaConnection`,
:class:`EventTopics`), which ``stream_app.settings.KafkaSettings`` and ``stream_app.topics.Topics``
fulfil, rather than importing them.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from producers.sink import DeliveryError, DeliveryStats
from schemas.codec import encode
from schemas.events import LabelEvent, PredictionEvent

logger = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 5.0
"""How much longer than the message timeout ``close`` waits for the last delivery reports."""


class KafkaConnection(Protocol):
    """How a client reaches Kafka: ``stream_app.settings.KafkaSettings``."""

    def client_config(self) -> dict[str, Any]:
        """librdkafka connection properties, security included."""
        ...


class EventTopics(Protocol):
    """Where the events go: ``stream_app.topics.Topics``."""

    @property
    def predictions(self) -> str: ...
    @property
    def labels(self) -> str: ...


class EventProducer:
    """An idempotent producer of PredictionEvents (to ``predictions``) and LabelEvents (``labels``).

    Both are keyed by ``request_id`` with the same partitioner, so a prediction and its labels
    land in the same partition number of the co-partitioned topics. Every delivery report is
    counted in ``stats``; a message that cannot be delivered within ``message_timeout`` seconds
    fails with librdkafka's error instead of waiting forever.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topics: EventTopics,
        *,
        message_timeout: float = 30.0,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self._topics = topics
        self._close_timeout = message_timeout + CLOSE_GRACE_SECONDS
        self.stats = DeliveryStats()
        config: dict[str, Any] = {
            **kafka.client_config(),
            # acks=all with producer ids and sequence numbers: retries neither duplicate nor
            # reorder events within a partition.
            "enable.idempotence": True,
            # Events are small (~0.4 kB) and come in bursts: waiting up to 20 ms fills batches,
            # cutting requests and improving compression, while adding latency far below the
            # seconds that labels take anyway.
            "linger.ms": 20,
            "batch.size": 512 * 1024,
            # JSON with repeated field names compresses several-fold at little CPU cost.
            "compression.type": "lz4",
            # The Java client's (and aiokafka's) key hashing, so that any other producer of the
            # same keys picks the same partitions.
            "partitioner": "murmur2_random",
            "message.timeout.ms": int(message_timeout * 1000),
            # librdkafka's own log (e.g. every refused connection) goes to Python logging, not
            # straight to stderr; what matters reaches the caller through delivery reports.
            "logger": logger,
            **(overrides or {}),
        }
        self._producer = Producer(config)

    def send(self, event: PredictionEvent | LabelEvent) -> None:
        """Queue one event; waits only while the local queue is full."""
        topic = (
            self._topics.predictions if isinstance(event, PredictionEvent) else self._topics.labels
        )
        self.send_encoded(topic, event.request_id.encode(), encode(event))

    def send_encoded(self, topic: str, key: bytes, value: bytes) -> None:
        """Queue an event already encoded by ``schemas.codec.encode`` (the benchmarks pre-encode
        millions); waits only while the local queue is full."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # queue full: serve delivery reports to make room
        self.stats.sent += 1
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.stats.delivered += 1
        else:
            key = (message.key() or b"").decode(errors="replace")
            self.stats.add_error(f"{message.topic()} key={key}: {error.str()}")

    def close(self) -> DeliveryStats:
        """Wait (bounded) for outstanding deliveries; what is still queued counts as undelivered."""
        self.stats.undelivered = self._producer.flush(self._close_timeout)
        return self.stats

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stats = self.close()
        if exc is None and not stats.ok:
            raise DeliveryError(stats)
