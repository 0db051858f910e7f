"""The event-time merge of input partitions: order by time, each partition's records in offset
order, nothing lost, nothing released twice."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.partition_merge import EventTimeMerge

Runs = dict[int, list[int]]

runs_of_times = st.dictionaries(
    st.integers(0, 3), st.lists(st.integers(0, 50), max_size=20).map(sorted), max_size=4
)


def batches(runs: Runs, cut: int) -> list[Runs]:
    """The runs fetched in two batches: each partition's first ``cut`` records, then the rest."""
    return [
        {p: times[:cut] for p, times in runs.items()},
        {p: times[cut:] for p, times in runs.items()},
    ]


@given(runs_of_times, st.integers(0, 20))
def test_every_record_comes_once_in_its_partition_order(runs: Runs, cut: int) -> None:
    merge: EventTimeMerge[int, tuple[int, int]] = EventTimeMerge()
    released: list[tuple[int, int]] = []
    for batch in batches(runs, cut):
        for partition, times in batch.items():
            merge.add(partition, [(t, (partition, t)) for t in times])
        released += merge.release()
    released += merge.release(everything=True)
    assert merge.held == 0
    for partition, times in runs.items():
        assert [t for p, t in released if p == partition] == times


@given(runs_of_times)
def test_a_batch_of_every_partition_comes_out_in_time_order(runs: Runs) -> None:
    merge: EventTimeMerge[int, int] = EventTimeMerge()
    for partition, times in runs.items():
        merge.add(partition, [(t, t) for t in times])
    released = merge.release() + merge.release(everything=True)
    assert released == sorted(released)


def test_a_partition_with_records_on_their_way_holds_the_others_back() -> None:
    merge: EventTimeMerge[str, str] = EventTimeMerge()
    merge.add("labels-0", [(5, "l@5")])
    assert merge.release(waiting=["predictions-0"]) == []  # nothing of it seen yet
    merge.add("predictions-0", [(3, "p@3"), (9, "p@9")])
    assert merge.release() == ["p@3", "l@5"]
    assert merge.release(waiting=["labels-0"]) == []  # labels released up to 5; p@9 waits
    assert merge.release() == ["p@9"]  # labels-0 caught up: nothing holds it back


def test_too_many_held_records_go_regardless() -> None:
    merge: EventTimeMerge[int, int] = EventTimeMerge(max_held=3)
    merge.add(0, [(t, t) for t in range(5)])
    assert merge.release(waiting=[1]) == [0, 1, 2, 3, 4]


def test_a_forgotten_partition_holds_nothing() -> None:
    merge: EventTimeMerge[int, int] = EventTimeMerge()
    merge.add(0, [(1, 1), (2, 2)])
    merge.add(1, [(0, 0)])
    merge.forget([0])
    assert (merge.held, merge.latest(0)) == (1, None)
    assert merge.release() == [0]
