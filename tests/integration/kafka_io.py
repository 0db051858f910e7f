"""Test helpers that read real topics: consume until a condition holds or a timeout passes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream_app.settings import Settings


def consume(
    settings: Settings,
    topic_names: list[str],
    expected: int | None = None,
    timeout: float = 60.0,
    idle_seconds: float = 3.0,
    until: Callable[[list[Message]], bool] | None = None,
) -> list[Message]:
    """Read ``topic_names`` from the beginning until ``expected`` messages came or time is up.

    With ``expected=None``: read everything there is, until ``idle_seconds`` pass without a
    new message (and, with ``until``, ``until`` holds of what came: messages that must come,
    then anything more that comes soon after them).
    """
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topic_names)
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if expected is not None and len(received) >= expected:
                break
            quiet = time.monotonic() - last_new > idle_seconds
            if expected is None and quiet and (until is None or until(received)):
                break
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error() is None:
                    received.append(message)
                    last_new = time.monotonic()
    finally:
        consumer.close()
    return received


def topic_size(settings: Settings, topic: str, timeout: float = 30.0) -> int:
    """How many messages ``topic`` holds: the sum of its partitions' high watermarks (asked
    again while a new topic's partitions have no leader yet)."""
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "driftstream-test-size"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                return sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in metadata.partitions
                )
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the broker is electing a leader: ask again shortly
    finally:
        consumer.close()
