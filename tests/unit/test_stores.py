"""The Kafka-native runtime's state stores without Kafka: detection state in pieces grouped by
model, written per piece (chunked when large) on the model's partition, restored and forgotten
per partition; the whole-model snapshot an older driftstream wrote is tombstoned."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pipeline.detect import StateChange, state_key
from pipeline.effects import PartitionTag
from stream_app.runtimes.kafka import stores as stores_module
from stream_app.runtimes.kafka.changelog import (
    CHUNK_BYTES,
    Record,
    RestoredPartition,
    chunk_key,
    read_records,
)
from stream_app.runtimes.kafka.stores import StateStores
from stream_app.settings import KafkaSettings


class Changelogs:
    """The records sent to each (topic, partition), and a restore that reads them back."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[Record]] = {}

    def send(self, topic: str, key: bytes, value: bytes | None, **kwargs: Any) -> None:
        self.logs.setdefault((topic, kwargs["partition"]), []).append(
            (key, value, kwargs.get("headers"))
        )

    def restore(
        self, _kafka: KafkaSettings, topic: str, partitions: Iterable[int]
    ) -> dict[int, RestoredPartition]:
        return {p: read_records(self.logs.get((topic, p), [])) for p in partitions}


@pytest.fixture
def changelogs(monkeypatch: pytest.MonkeyPatch) -> Changelogs:
    logs = Changelogs()
    monkeypatch.setattr(stores_module, "restore", logs.restore)
    return logs


def new_stores(changelogs: Changelogs) -> StateStores:
    return StateStores(KafkaSettings(), "join-store", "detect-store", changelogs.send)


def test_pieces_are_written_on_their_partition_and_restored_grouped_by_model(
    changelogs: Changelogs,
) -> None:
    big = bytes(range(256)) * (CHUNK_BYTES // 128)  # two chunks
    writer = new_stores(changelogs)
    writer.write(
        [
            StateChange(1, state_key("fraud", "bank"), big),
            StateChange(1, state_key("fraud", "signal/error_rate"), b"adwin"),
            StateChange(0, state_key("churn", "bank"), b"small"),
        ]
    )
    assert max(len(v or b"") for _k, v, _h in changelogs.logs[("detect-store", 1)]) <= CHUNK_BYTES
    assert [k for k, _v, _h in changelogs.logs[("detect-store", 0)]] == [b"churn/bank"]

    reader = new_stores(changelogs)
    reader.restore([], [1])
    assert reader.load("churn") == {}, "partition 0 was not assigned"
    assert reader.load("fraud") == {"bank": big, "signal/error_rate": b"adwin"}
    assert reader.load("fraud") == {}, "handed over once"

    reader.write([StateChange(1, state_key("fraud", "signal/error_rate"), None)])
    again = new_stores(changelogs)
    again.restore([], [1])
    assert again.load("fraud") == {"bank": big}


def test_a_smaller_piece_drops_the_chunks_of_the_restored_one(changelogs: Changelogs) -> None:
    new_stores(changelogs).write([StateChange(0, "m/bank", bytes(3 * CHUNK_BYTES))])
    restarted = new_stores(changelogs)
    restarted.restore([], [0])
    restarted.write([StateChange(0, "m/bank", b"tiny")])
    last = {k: v for k, v, _h in changelogs.logs[("detect-store", 0)]}
    assert [last[chunk_key(b"m/bank", i)] for i in range(3)] == [None, None, None]


def test_forgetting_a_partition_drops_its_restored_pieces(changelogs: Changelogs) -> None:
    new_stores(changelogs).write([StateChange(0, "a/bank", b"a"), StateChange(1, "b/bank", b"b")])
    stores = new_stores(changelogs)
    stores.restore([], [0, 1])
    stores.forget([], [1])
    assert stores.load("b") == {}
    assert stores.load("a") == {"bank": b"a"}


def test_an_older_whole_model_snapshot_is_tombstoned_with_the_first_pieces(
    changelogs: Changelogs,
) -> None:
    changelogs.send("detect-store", b"fraud", b"pickled whole model", partition=2)
    stores = new_stores(changelogs)
    stores.restore([], [2])
    assert stores.load("fraud") == {"": b"pickled whole model"}  # detect resets it, counted
    stores.write([StateChange(2, "fraud/bank", b"new")])
    again = new_stores(changelogs)
    again.restore([], [2])
    assert again.load("fraud") == {"bank": b"new"}


def test_counters_go_to_the_store_of_their_partition(changelogs: Changelogs) -> None:
    stores = new_stores(changelogs)
    i3, o1 = PartitionTag.of_input(3), PartitionTag.of_observations(1)
    stores.count({("fraud", "joined", i3): 2, (None, "deadlettered", o1): 1})
    stores.write([])
    assert stores.committed() == {i3: {("fraud", "joined"): 2}, o1: {(None, "deadlettered"): 1}}
    restored = new_stores(changelogs).restore([3], [1])
    assert restored.join_partitions == {3}
    assert restored.totals == {i3: {("fraud", "joined"): 2}, o1: {(None, "deadlettered"): 1}}
