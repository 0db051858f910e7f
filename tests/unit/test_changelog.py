"""Changelog values over CHUNK_BYTES as chunk records, without Kafka: a compacted topic is a
list of records of which compaction keeps the last per key (and may drop tombstones)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.runtimes.kafka.changelog import (
    CHUNK_BYTES,
    COUNTS_KEY,
    ChangelogCorruptError,
    ChangelogWriter,
    Record,
    RestoredPartition,
    Totals,
    chunk_key,
    decode_totals,
    encode_totals,
    parse_chunk_key,
    read_records,
)
from tests.strategies import model_ids


class Topic:
    """One partition of a compacted changelog topic, written through a ChangelogWriter."""

    def __init__(self) -> None:
        self.log: list[Record] = []

    def send(self, topic: str, key: bytes, value: bytes | None, **kwargs: object) -> None:
        assert kwargs.get("partition") == 0
        headers = kwargs.get("headers")
        self.log.append((key, value, headers))  # type: ignore[arg-type]

    def compacted(self, drop_tombstones: bool = False) -> list[Record]:
        """The last record of each key, in the order they were written."""
        last: dict[bytes, Record] = {}
        for record in self.log:
            last.pop(record[0], None)
            last[record[0]] = record
        return [r for r in last.values() if not (drop_tombstones and r[1] is None)]

    def restore(self, drop_tombstones: bool = False) -> RestoredPartition:
        return read_records(self.compacted(drop_tombstones))

    def live_chunks(self) -> dict[bytes, set[int]]:
        """The chunks the compacted topic still holds (not tombstones), by key."""
        chunks: dict[bytes, set[int]] = {}
        for key, value, _headers in self.compacted(drop_tombstones=True):
            if (chunk := parse_chunk_key(key)) is not None and value is not None:
                chunks.setdefault(chunk[0], set()).add(chunk[1])
        return chunks


def value_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def topic() -> Topic:
    return Topic()


@pytest.fixture
def writer(topic: Topic) -> ChangelogWriter:
    return ChangelogWriter("store", topic.send)


def test_a_large_value_goes_as_chunks_no_record_over_the_bound(
    topic: Topic, writer: ChangelogWriter
) -> None:
    big = value_of(5 * CHUNK_BYTES + 123)
    writer.write(0, b"m/bank", big)
    writer.write(0, b"r-1", b'{"small": true}')
    assert max(len(value or b"") for _key, value, _headers in topic.log) <= CHUNK_BYTES
    assert len(topic.log) == 6 + 1 + 1  # 6 chunks, the chunked value's own record, the small
    part = topic.restore()
    assert part.values == {b"m/bank": big, b"r-1": b'{"small": true}'}
    assert part.chunks == {b"m/bank": 6}


def test_exactly_the_bound_is_one_record(topic: Topic, writer: ChangelogWriter) -> None:
    writer.write(0, b"m/bank", value_of(CHUNK_BYTES))
    assert len(topic.log) == 1
    writer.write(0, b"m/bank", value_of(CHUNK_BYTES + 1))
    assert len(topic.log) == 1 + 2 + 1
    assert topic.restore().values == {b"m/bank": value_of(CHUNK_BYTES + 1)}


@pytest.mark.parametrize("drop_tombstones", [False, True])
def test_shrinking_values_leave_no_stale_chunk(
    topic: Topic, writer: ChangelogWriter, drop_tombstones: bool
) -> None:
    sizes = [7 * CHUNK_BYTES, 3 * CHUNK_BYTES + 5, 100, 4 * CHUNK_BYTES, 2 * CHUNK_BYTES - 1]
    for i, size in enumerate(sizes):
        writer.write(0, b"m/bank", value_of(size, seed=i))
        part = topic.restore(drop_tombstones)
        assert part.values == {b"m/bank": value_of(size, seed=i)}, f"after writing {size} bytes"
        chunks = -(-size // CHUNK_BYTES) if size > CHUNK_BYTES else 0
        assert topic.live_chunks().get(b"m/bank", set()) == set(range(chunks)), size
        assert part.chunks == ({b"m/bank": chunks} if chunks else {})


def test_a_tombstone_deletes_every_chunk(topic: Topic, writer: ChangelogWriter) -> None:
    writer.write(0, b"m/bank", value_of(3 * CHUNK_BYTES))
    writer.write(0, b"m/other", value_of(2 * CHUNK_BYTES + 1, seed=1))
    writer.write(0, b"m/bank", None)
    part = topic.restore(drop_tombstones=True)
    assert part.values == {b"m/other": value_of(2 * CHUNK_BYTES + 1, seed=1)}
    assert topic.live_chunks() == {b"m/other": {0, 1, 2}}
    assert part.chunks == {b"m/other": 3}


def test_a_writer_restored_from_the_topic_drops_the_chunks_it_did_not_write(
    topic: Topic,
) -> None:
    """After a restart (or a rollback), the counts come from the restore."""
    ChangelogWriter("store", topic.send).write(0, b"m/bank", value_of(6 * CHUNK_BYTES))
    restarted = ChangelogWriter("store", topic.send)
    restarted.restored(0, topic.restore().chunks)
    restarted.write(0, b"m/bank", value_of(CHUNK_BYTES + 1))
    assert topic.live_chunks() == {b"m/bank": {0, 1}}
    assert topic.restore().values == {b"m/bank": value_of(CHUNK_BYTES + 1)}


def test_the_restore_takes_only_the_chunks_its_record_names() -> None:
    """A stale chunk left by an older writer (one that did not tombstone it) is not read as
    part of the value, and is reported so the next write drops it."""
    old = value_of(4 * CHUNK_BYTES)
    new = value_of(2 * CHUNK_BYTES, seed=1)
    topic = Topic()
    writer = ChangelogWriter("store", topic.send)
    writer.write(0, b"m/bank", old)
    writer.chunks.clear()  # forgets the 4 chunks: writes 2 and tombstones none
    writer.write(0, b"m/bank", new)
    part = topic.restore()
    assert part.values == {b"m/bank": new}
    assert part.chunks == {b"m/bank": 4}


def test_a_missing_or_mismatched_chunk_is_an_error_not_wrong_state() -> None:
    topic = Topic()
    ChangelogWriter("store", topic.send).write(0, b"m/bank", value_of(3 * CHUNK_BYTES))
    missing = [r for r in topic.log if r[0] != chunk_key(b"m/bank", 1)]
    with pytest.raises(ChangelogCorruptError, match=r"lacks chunks \[1\] of 3"):
        read_records(missing)
    swapped = [
        (key, value_of(CHUNK_BYTES, seed=9) if key == chunk_key(b"m/bank", 2) else value, h)
        for key, value, h in topic.log
    ]
    with pytest.raises(ChangelogCorruptError, match="CRC"):
        read_records(swapped)


def test_large_counters_are_chunked_too(topic: Topic, writer: ChangelogWriter) -> None:
    totals: Totals = Counter(
        {(f"model-{i}", f"counter-{j}"): i * j + 1 for i in range(300) for j in range(20)}
    )
    data = encode_totals(totals)
    assert len(data) > 2 * CHUNK_BYTES
    writer.write(0, COUNTS_KEY, data)
    part = topic.restore()
    assert part.totals == decode_totals(data) == totals
    assert part.values == {}


keys = st.one_of(
    st.text(max_size=40),  # request ids: any UTF-8
    model_ids,
    st.builds(lambda m, p: f"{m}/{p}", model_ids, st.text(max_size=20)),  # state keys
)


@given(keys, st.integers(min_value=0, max_value=10_000))
def test_chunk_keys_never_collide_with_request_ids_model_ids_or_state_keys(
    key: str, index: int
) -> None:
    data = key.encode()
    assert parse_chunk_key(data) is None
    with pytest.raises(UnicodeDecodeError):  # no request id, model id or state key is one
        chunk_key(data, index).decode()
    assert chunk_key(data, index) not in (data, COUNTS_KEY)
    assert parse_chunk_key(chunk_key(data, index)) == (data, index)
    assert parse_chunk_key(chunk_key(COUNTS_KEY, index)) == (COUNTS_KEY, index)
