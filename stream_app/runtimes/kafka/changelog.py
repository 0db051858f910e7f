"""The Kafka-native runtime's state on Kafka: compacted changelog topics, and their restore.

Two stores, each a compacted topic with one partition per partition of the stream it belongs to:

- ``<app id>-join-store``: per input partition, the join entries (key: request id, value: the
  :class:`~detectors.join.JoinEntry` as JSON; a tombstone once it expired or matched and aged
  out) and the partition's counters (key ``COUNTS_KEY``);
- ``<app id>-detect-store``: per ``observations`` partition, each model's detection snapshot
  (key: model id, value: :meth:`pipeline.detect.ModelDetection.snapshot`) and the partition's
  counters.

Both are written in the transaction that commits the records they reflect, and read with
``read_committed``: a restored partition holds exactly the state of its committed offsets.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pydantic import TypeAdapter

from detectors.join import JoinEntry
from stream_app.settings import KafkaSettings

log = logging.getLogger(__name__)

JOIN_ENTRY = TypeAdapter(JoinEntry)
COUNTS_KEY = b"\xffcounts"
"""The key of a partition's counters: no request id or model id encodes to it (not UTF-8)."""

Totals = Counter[tuple[str | None, str]]
"""Counter totals of one partition: (model id or None, counter name) -> n."""


def encode_totals(totals: Totals) -> bytes:
    rows = [[model, name, n] for (model, name), n in totals.items() if n]
    return json.dumps(sorted(rows, key=lambda row: (row[0] or "", row[1]))).encode()


def decode_totals(data: bytes) -> Totals:
    return Counter({(model, name): n for model, name, n in json.loads(data)})


@dataclass
class RestoredPartition:
    """What one changelog partition held: its latest value per key, and its counters."""

    values: dict[bytes, bytes] = field(default_factory=dict)
    totals: Totals = field(default_factory=Counter)
    records: int = 0


def restore(
    kafka: KafkaSettings, topic: str, partitions: Iterable[int], timeout: float = 300.0
) -> dict[int, RestoredPartition]:
    """Read ``partitions`` of a changelog topic from the start to their end (committed records
    only; waits for an open transaction of a crashed writer to be resolved)."""
    wanted = sorted(set(partitions))
    restored = {p: RestoredPartition() for p in wanted}
    if not wanted:
        return restored
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"driftstream-restore-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "error_cb": lambda error: log.warning("restore consumer: %s", error),
        }
    )
    try:
        ends: dict[int, int] = {}
        for p in wanted:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        if not ends:
            return restored
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise RuntimeError(f"restoring {topic} partitions {sorted(ends)} timed out")
            for message in consumer.consume(num_messages=10_000, timeout=0.2):
                if message.error() is not None:
                    log.warning("restore %s: %s", topic, message.error())
                    continue
                part = restored[message.partition() or 0]
                part.records += 1
                key, value = message.key() or b"", message.value()
                if key == COUNTS_KEY:
                    part.totals = decode_totals(value) if value else Counter()
                elif value is None:
                    part.values.pop(key, None)
                else:
                    part.values[key] = value
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            for tp in positions:
                if tp.offset >= ends[tp.partition]:  # control records count: end reached
                    del ends[tp.partition]
    finally:
        consumer.close()
    return restored


def join_entries(part: RestoredPartition) -> list[tuple[str, JoinEntry]]:
    """The join entries of a restored join-store partition."""
    return [(key.decode(), JOIN_ENTRY.validate_json(value)) for key, value in part.values.items()]
