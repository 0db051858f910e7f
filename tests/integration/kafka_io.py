"""Test helpers that read real topics: consume until a condition holds or a timeout passes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from stream_app.settings import Settings


def consume(
    settings: Settings,
    topic_names: list[str],
    expected: int | None = None,
    timeout: float = 60.0,
    idle_seconds: float = 3.0,
) -> list[Message]:
    """Read ``topic_names`` from the beginning until ``expected`` messages came or time is up.

    With ``expected=None``: read everything there is, until ``idle_seconds`` pass without a
    new message.
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
            if expected is None and time.monotonic() - last_new > idle_seconds:
                break
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error() is None:
                    received.append(message)
                    last_new = time.monotonic()
    finally:
        consumer.close()
    return received


def consume_to_end(
    settings: Settings,
    topic_names: list[str],
    until: Callable[[list[Message]], bool] | None = None,
    timeout: float = 60.0,
) -> list[Message]:
    """Read ``topic_names`` from the beginning to their ends (``read_committed``: to the last
    committed record), then on until ``until`` holds of what came (records still on their
    way), or time is up. No waiting for quiet: for topics written before the call."""
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",  # assigned: no group joined
            "enable.auto.commit": False,
        }
    )
    partitions = [
        TopicPartition(name, p, OFFSET_BEGINNING)
        for name in topic_names
        for p in consumer.list_topics(name, timeout=10).topics[name].partitions
    ]

    def ends() -> dict[tuple[str, int], int]:
        """Each non-empty partition's end offset."""
        marks = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            for tp in partitions
        }
        return {key: high for key, (low, high) in marks.items() if high > low}

    consumer.assign(partitions)
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        pending = ends()
        while time.monotonic() < deadline:
            received += [m for m in consumer.consume(500, timeout=0.2) if m.error() is None]
            # a position steps over transaction markers and aborted records: it reaches the end
            at = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(partitions)}
            if all(at[key] >= end for key, end in pending.items()):
                if until is None or until(received):
                    break
                pending = ends()  # more came meanwhile: read to the new ends
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
