"""The Kafka-native runtime's state on Kafka: compacted changelog topics, and their restore.

Two stores, each a compacted topic with one partition per partition of the stream it belongs to:

- ``<app id>-join-store``: per input partition, the join entries (key: request id, value: the
  :class:`~detectors.join_buffer.JoinEntry` as JSON; a tombstone once it expired or matched and aged
  out) and the partition's counters (key ``COUNTS_KEY``);
- ``<app id>-detect-store``: per ``observations`` partition, each model's detection snapshot
  (key: model id, value: :meth:`pipeline.detect.ModelDetection.snapshot`) and the partition's
  counters.

Both are written in the transaction that commits the records they reflect, and read with
``read_committed``: a restored partition holds exactly the state of its committed offsets.

**No record over a fixed size.** A value larger than :data:`CHUNK_BYTES` (64 KiB) is written
as numbered chunk records (key :func:`chunk_key`: ``0xFE``, the key, ``0xFE``, the chunk's
number in decimal; ``0xFE`` is in no UTF-8 string, so no request id, model id or state key can
be one, and ``COUNTS_KEY`` starts with ``0xFF``), then an empty record under the key itself
whose ``driftstream-chunks`` header says how many chunks, how long the value and its CRC-32
(:func:`changelog_records`). Every record therefore stays under Kafka's default limits
(1 MiB) whatever the state, e.g. a model with thousands of signals. Compaction keeps the last
record per key, so when a value shrinks to fewer chunks (or to one record, or is deleted) the
chunks it no longer uses are tombstoned in the same transaction: the writer knows how many
chunks each key has (:class:`ChangelogWriter`, filled by the restore). The restore
(:class:`RestoredPartition`) reassembles a value from its chunks and checks its length and
CRC; a missing chunk or a mismatch raises :class:`ChangelogCorruptError` rather than restoring
wrong state.

>>> records, chunks = changelog_records(b"m", bytes(CHUNK_BYTES * 2 + 1))
>>> chunks, [(key, len(value or b"")) for key, value, _headers in records]
(3, [(b'\xfem\xfe0', 65536), (b'\xfem\xfe1', 65536), (b'\xfem\xfe2', 1), (b'm', 0)])
>>> [key for key, value, _ in changelog_records(b"m", b"small", stored_chunks=3)[0] if not value]
[b'\xfem\xfe0', b'\xfem\xfe1', b'\xfem\xfe2']
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pydantic import TypeAdapter

from detectors.join_buffer import JoinEntry
from stream_app.settings import KafkaSettings

log = logging.getLogger(__name__)

JOIN_ENTRY = TypeAdapter(JoinEntry)
COUNTS_KEY = b"\xffcounts"
"""The key of a partition's counters: no request id or model id encodes to it (not UTF-8)."""

Totals = Counter[tuple[str | None, str]]
"""Counter totals of one partition: (model id or None, counter name) -> n."""

CHUNK_BYTES = 64 * 1024
"""The largest value written as one changelog record; a larger one goes as chunks of this
size. A chunk record is at most this plus its key (a request id, model id or state key, and
seven bytes) and no header: far under Kafka's default ``max.message.bytes`` (1 MiB), and the
producer's batches (``message.max.bytes``, 1 MB) hold whole chunks."""
CHUNK_MARK = b"\xfe"
"""Starts and ends the key part of a chunk key: a byte no UTF-8 string holds."""
CHUNKS_HEADER = "driftstream-chunks"
"""On the record under a chunked value's own key: ``"<chunks> <bytes> <crc32>"``."""

Headers = list[tuple[str, bytes]]
Record = tuple[bytes, bytes | None, Headers | None]
"""A changelog record to write: key, value (None: a tombstone), headers."""


class ChangelogCorruptError(RuntimeError):
    """A changelog partition holds a chunked value whose chunks are missing or do not match."""


def chunk_key(key: bytes, index: int) -> bytes:
    """The key of chunk ``index`` of ``key``'s value."""
    return b"%b%b%b%d" % (CHUNK_MARK, key, CHUNK_MARK, index)


def parse_chunk_key(key: bytes) -> tuple[bytes, int] | None:
    """``(key, index)`` of a chunk key; None for any other key.

    >>> parse_chunk_key(chunk_key(COUNTS_KEY, 12)), parse_chunk_key(COUNTS_KEY)
    ((b'\\xffcounts', 12), None)
    """
    if not key.startswith(CHUNK_MARK):
        return None
    base, mark, index = key[1:].rpartition(CHUNK_MARK)
    if not mark or not index.isdigit():
        return None
    return base, int(index)


def changelog_records(
    key: bytes, value: bytes | None, stored_chunks: int = 0
) -> tuple[list[Record], int]:
    """The records that set ``key`` to ``value`` (None: delete it) in a changelog where its
    value is now stored in ``stored_chunks`` chunks (0: in one record, or not at all); and in
    how many chunks it is stored after them (0 for a value of one record).

    A value over :data:`CHUNK_BYTES` becomes its chunks and an empty record under ``key`` with
    the :data:`CHUNKS_HEADER`; chunks of the old value that the new one does not overwrite are
    tombstoned, so a compacted changelog holds no stale chunk."""
    if value is None or len(value) <= CHUNK_BYTES:
        records: list[Record] = [(chunk_key(key, i), None, None) for i in range(stored_chunks)]
        records.append((key, value, None))
        return records, 0
    pieces = [value[at : at + CHUNK_BYTES] for at in range(0, len(value), CHUNK_BYTES)]
    records = [(chunk_key(key, i), piece, None) for i, piece in enumerate(pieces)]
    records += [(chunk_key(key, i), None, None) for i in range(len(pieces), stored_chunks)]
    manifest = f"{len(pieces)} {len(value)} {zlib.crc32(value)}".encode()
    records.append((key, b"", [(CHUNKS_HEADER, manifest)]))
    return records, len(pieces)


class ChangelogWriter:
    """Writes values to the partitions of one changelog topic, chunked where they are large
    (:func:`changelog_records`), remembering each key's chunk count to tombstone the chunks a
    smaller value leaves behind. ``send(topic, key, value, partition=, headers=)`` produces.

    The counts are those of the committed changelog plus what this writer sent since: after a
    rollback, :meth:`forget` the partitions and :meth:`restored` them again."""

    def __init__(self, topic: str, send: Callable[..., None]) -> None:
        self.topic = topic
        self.send = send
        self.chunks: dict[int, dict[bytes, int]] = {}

    def restored(self, partition: int, chunks: dict[bytes, int]) -> None:
        self.chunks[partition] = dict(chunks)

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.chunks.pop(partition, None)

    def write(self, partition: int, key: bytes, value: bytes | None) -> None:
        stored = self.chunks.setdefault(partition, {})
        records, chunks = changelog_records(key, value, stored.get(key, 0))
        if chunks:
            stored[key] = chunks
        else:
            stored.pop(key, None)
        for record_key, record_value, headers in records:
            extra = {"headers": headers} if headers else {}
            self.send(self.topic, record_key, record_value, partition=partition, **extra)


def encode_totals(totals: Totals) -> bytes:
    rows = [[model, name, n] for (model, name), n in totals.items() if n]
    return json.dumps(sorted(rows, key=lambda row: (row[0] or "", row[1]))).encode()


def decode_totals(data: bytes) -> Totals:
    return Counter({(model, name): n for model, name, n in json.loads(data)})


@dataclass
class RestoredPartition:
    """What one changelog partition held: its latest value per key (chunked ones reassembled),
    its counters, and the chunk count of each key stored in chunks (for :class:`ChangelogWriter`).

    Fed record after record by :meth:`add`, then :meth:`finish`."""

    values: dict[bytes, bytes] = field(default_factory=dict)
    totals: Totals = field(default_factory=Counter)
    records: int = 0
    chunks: dict[bytes, int] = field(default_factory=dict)
    _manifests: dict[bytes, tuple[int, int, int]] = field(default_factory=dict)
    _pieces: dict[bytes, dict[int, bytes]] = field(default_factory=dict)

    def add(self, key: bytes, value: bytes | None, headers: Headers | None = None) -> None:
        """One record of the changelog, in its order (headers are looked at only on an empty
        value)."""
        self.records += 1
        if (chunk := parse_chunk_key(key)) is not None:
            base, index = chunk
            if value is None:
                self._pieces.get(base, {}).pop(index, None)
            else:
                self._pieces.setdefault(base, {})[index] = value
            return
        self._manifests.pop(key, None)
        if value is None:
            self.values.pop(key, None)
            return
        manifest = dict(headers or []).get(CHUNKS_HEADER) if not value else None
        if manifest is None:
            self.values[key] = value
            return
        self.values.pop(key, None)
        chunks, size, crc = (int(part) for part in manifest.split())
        self._manifests[key] = (chunks, size, crc)

    def finish(self, where: str = "changelog") -> RestoredPartition:
        """Reassemble the chunked values and take the counters out of the values."""
        for key, pieces in self._pieces.items():  # stale chunks too: the next write drops them
            if pieces:
                self.chunks[key] = max(pieces) + 1
        for key, (chunks, size, crc) in self._manifests.items():
            pieces = self._pieces.get(key, {})
            missing = [i for i in range(chunks) if i not in pieces]
            if missing:
                raise ChangelogCorruptError(
                    f"{where}: the value of key {key!r} lacks chunks {missing} of {chunks}"
                )
            value = b"".join(pieces[i] for i in range(chunks))
            if len(value) != size or zlib.crc32(value) != crc:
                raise ChangelogCorruptError(
                    f"{where}: the value of key {key!r} reassembled from {chunks} chunks has "
                    f"{len(value)} bytes and CRC {zlib.crc32(value)}, not {size} and {crc}"
                )
            self.values[key] = value
            self.chunks[key] = max(chunks, self.chunks.get(key, 0))
        self._manifests.clear()
        self._pieces.clear()
        counts = self.values.pop(COUNTS_KEY, None)
        self.totals = decode_totals(counts) if counts else Counter()
        return self


def read_records(records: Iterable[Record], where: str = "changelog") -> RestoredPartition:
    """What a changelog partition holding ``records`` (in order) restores to.

    >>> log = [*changelog_records(b"m", b"x" * (CHUNK_BYTES + 1))[0], (b"r-1", b"{}", None)]
    >>> part = read_records(log)
    >>> sorted((key, len(value)) for key, value in part.values.items()), part.chunks
    ([(b'm', 65537), (b'r-1', 2)], {b'm': 2})
    """
    part = RestoredPartition()
    for key, value, headers in records:
        part.add(key, value, headers)
    return part.finish(where)


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
                value = message.value()
                headers = message.headers() if value == b"" else None
                part.add(message.key() or b"", value, headers)  # type: ignore[arg-type]
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            for tp in positions:
                if tp.offset >= ends[tp.partition]:  # control records count: end reached
                    del ends[tp.partition]
    finally:
        consumer.close()
    for partition, part in restored.items():
        part.finish(f"{topic} partition {partition}")
    return restored


def join_entries(part: RestoredPartition) -> list[tuple[str, JoinEntry]]:
    """The join entries of a restored join-store partition."""
    return [(key.decode(), JOIN_ENTRY.validate_json(value)) for key, value in part.values.items()]
