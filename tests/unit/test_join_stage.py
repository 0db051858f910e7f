"""The per-partition join over one shared table (a dict here, a Faust table in the worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.effects import Effects, PartitionTag
from pipeline.join import JoinProcessor
from stream_app.runtimes.faust.join_stage import PartitionView
from tests.factories import T0, label, prediction


def faust_join(table: dict[bytes, bytes], max_pending: int = 1_000_000) -> JoinProcessor:
    """The join processor as the Faust runtime builds it: every partition a view of ``table``."""
    return JoinProcessor(
        "predictions",
        ttl_seconds=60,
        max_pending=max_pending,
        max_future_seconds=300,
        store_for=lambda partition: PartitionView(table, partition),
        redelivery=True,
    )


def test_views_of_one_table_keep_their_partitions_apart() -> None:
    table: dict[bytes, bytes] = {}
    joins = faust_join(table)
    joins.buffer(0).offer(prediction("a"))
    joins.buffer(1).offer(prediction("b"))
    assert sorted(PartitionView(table, 0)) == ["a"]
    assert sorted(PartitionView(table, 1)) == ["b"]
    with pytest.raises(KeyError):
        del PartitionView(table, 0)["b"]
    assert set(table) == {b"a", b"b"}


def test_a_new_worker_continues_from_the_table() -> None:
    table: dict[bytes, bytes] = {}
    before = faust_join(table)
    before.buffer(2).offer(prediction("a", 0))
    before.buffer(2).offer(label("b", 1))
    step = before.buffer(2).offer(label("a", 2))
    assert step.outcome is not None

    after = faust_join(table)  # restarted: same table
    assert after.buffer(2).offer(label("a", 3)).note == "duplicate"
    joined = after.buffer(2).offer(prediction("b", 4))
    assert joined.outcome is not None
    assert joined.outcome.request_id == "b"
    expired = after.buffer(2).expire(T0 + timedelta(seconds=200))
    assert expired == []  # both are done markers now: they vanish without a count
    assert table == {}


def test_evictions_are_counted_once_even_across_a_revocation() -> None:
    join, effects = faust_join({}, max_pending=2), Effects()
    for i in range(5):
        join.offer(prediction(f"r{i}", i), 0, effects)
    assert effects.counts[(None, "evicted", PartitionTag.of_input(0))] == 3
    join.revoke([0])
    join.offer(label("r4", 5), 0, effects)  # rebuilt from the table: the match evicts nothing
    assert effects.counts[(None, "evicted", PartitionTag.of_input(0))] == 3
    assert effects.counts[("m", "joined", PartitionTag.of_input(0))] == 1
