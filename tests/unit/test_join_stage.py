"""The per-partition join over one shared table (a dict here, a Faust table in the worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stream_app.join_stage import PartitionedJoin, PartitionView
from stream_app.settings import JoinSettings
from tests.factories import T0, label, prediction


def test_views_of_one_table_keep_their_partitions_apart() -> None:
    table: dict[bytes, bytes] = {}
    joins = PartitionedJoin(table, JoinSettings(ttl_seconds=60))
    joins.buffer(0).offer(prediction("a"))
    joins.buffer(1).offer(prediction("b"))
    assert sorted(PartitionView(table, 0)) == ["a"]
    assert sorted(PartitionView(table, 1)) == ["b"]
    with pytest.raises(KeyError):
        del PartitionView(table, 0)["b"]
    assert set(table) == {b"a", b"b"}


def test_a_new_worker_continues_from_the_table() -> None:
    table: dict[bytes, bytes] = {}
    before = PartitionedJoin(table, JoinSettings(ttl_seconds=60))
    before.buffer(2).offer(prediction("a", 0))
    before.buffer(2).offer(label("b", 1))
    step = before.buffer(2).offer(label("a", 2))
    assert step.outcome is not None

    after = PartitionedJoin(table, JoinSettings(ttl_seconds=60))  # restarted: same table
    assert after.buffer(2).offer(label("a", 3)).note == "duplicate"
    joined = after.buffer(2).offer(prediction("b", 4))
    assert joined.outcome is not None
    assert joined.outcome.request_id == "b"
    expired = after.buffer(2).expire(T0 + timedelta(seconds=200))
    assert expired == []  # both are done markers now: they vanish without a count
    assert table == {}


def test_evictions_are_reported_once_even_across_a_revocation() -> None:
    joins = PartitionedJoin({}, JoinSettings(ttl_seconds=60, max_pending=2))
    for i in range(5):
        joins.buffer(0).offer(prediction(f"r{i}", i))
    assert joins.take_evicted() == 3
    assert joins.take_evicted() == 0
    joins.buffer(1).offer(prediction("x"))
    joins.forget({0})
    assert joins.take_evicted() == 0
