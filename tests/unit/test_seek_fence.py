"""SeekFence: which fetched batches a seek made stale."""

from __future__ import annotations

from stream_app.runtimes.faust.seek_fence import SeekFence


def test_a_batch_is_stale_only_for_the_partitions_sought_after_it_was_fetched() -> None:
    fence = SeekFence()
    before = fence.fetched()
    fence.sought([("labels", 0), ("predictions", 3)])
    after = fence.fetched()
    fence.sought([("labels", 1)])
    assert fence.stale(("labels", 0), before)
    assert fence.stale(("predictions", 3), before)
    assert not fence.stale(("predictions", 2), before)
    assert not fence.stale(("labels", 0), after)
    assert fence.stale(("labels", 1), after)


def test_a_seek_of_no_partition_makes_nothing_stale() -> None:
    fence = SeekFence()
    batch = fence.fetched()
    fence.sought([])
    assert not fence.stale(("labels", 0), batch)
