"""Input records in event-time order across partitions, each partition's in offset order.

A worker reads several input partitions at once, and a fetch hands it a run of records per
partition: under a backlog one partition's run can reach far ahead in event time of another's.
The detectors would see a model's stream in runs (after the drift, then before it again) and
raise alerts the replay of the same stream does not. An :class:`EventTimeMerge` takes each
batch's records per partition and releases them merged by event time, but only up to the
earliest of the partitions' latest times: what lies beyond waits for the other partitions'
next records (a partition's suffix, so the offsets released per partition stay a prefix and
can be committed). A partition that holds nothing holds the others back only while the runtime
says records of it are on their way (``waiting``: it lags behind its end), and then only past
the last time released of it; once more than ``max_held`` records wait, they go regardless.
A runtime keeps that last resort for the exception: it stops fetching a partition that holds
more than its share (:func:`run_ahead`) until the others caught up, its shares and fetches
small enough for its partitions (:func:`shares`).

>>> merge: EventTimeMerge[int, str] = EventTimeMerge()
>>> merge.add(0, [(1, "p0@1"), (5, "p0@5")])
>>> merge.add(1, [(2, "p1@2"), (3, "p1@3")])
>>> merge.release()
['p0@1', 'p1@2', 'p1@3']
>>> merge.add(1, [(6, "p1@6")])
>>> merge.release(), merge.held
(['p0@5'], 1)
>>> merge.release(everything=True)
['p1@6']
>>> merge.add(0, [(7, "p0@7")])
>>> merge.release(waiting={1}), merge.release(waiting={2}) # 1 released up to 6, 2 never
([], [])
>>> merge.release()
['p0@7']
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class EventTimeMerge(Generic[K, T]):
    """Held records per partition (any key), as ``(event time, item)`` in offset order."""

    def __init__(self, max_held: int = 50_000) -> None:
        self.max_held = max_held
        self._runs: dict[K, list[tuple[Any, T]]] = {}
        self._latest: dict[K, Any] = {}
        self._released: dict[K, Any] = {}

    @property
    def held(self) -> int:
        return sum(len(run) for run in self._runs.values())

    def add(self, partition: K, records: Iterable[tuple[Any, T]]) -> None:
        """Records of ``partition`` that follow the ones added before, in offset order."""
        run = self._runs.setdefault(partition, [])
        for time, item in records:
            run.append((time, item))
            if partition not in self._latest or time > self._latest[partition]:
                self._latest[partition] = time

    def held_by_partition(self) -> dict[K, int]:
        """The records held of each partition that holds any."""
        return {partition: len(run) for partition, run in self._runs.items() if run}

    def latest(self, partition: K) -> Any:
        """The latest event time held of ``partition`` (None if it holds nothing)."""
        return self._latest.get(partition)

    def release(self, everything: bool = False, waiting: Iterable[K] = ()) -> list[T]:
        """The records every partition has caught up with (all of them with ``everything``),
        merged by event time. ``waiting``: partitions with records on their way."""
        runs = {p: run for p, run in self._runs.items() if run}
        if not runs:
            return []
        bound = None
        if not everything and self.held <= self.max_held:
            limits = [self._latest[p] for p in runs]
            for p in waiting:
                if p not in runs:
                    if p not in self._released:
                        return []  # nothing of it seen yet: it may come first
                    limits.append(self._released[p])
            bound = min(limits)
        released: list[T] = []
        taken = dict.fromkeys(runs, 0)
        order = {p: n for n, p in enumerate(runs)}  # ties in time: the key need not compare
        heads = [(run[0][0], order[p], 0, p) for p, run in runs.items()]
        heapq.heapify(heads)
        while heads:
            time, rank, index, partition = heads[0]
            if bound is not None and time > bound:
                break
            released.append(runs[partition][index][1])
            taken[partition] = index + 1
            self._released[partition] = time
            if index + 1 < len(runs[partition]):
                following = (runs[partition][index + 1][0], rank, index + 1, partition)
                heapq.heapreplace(heads, following)
            else:
                heapq.heappop(heads)
        for partition, n in taken.items():
            del runs[partition][:n]
            if not runs[partition]:
                del self._runs[partition]
                del self._latest[partition]
        return released

    def forget(self, partitions: Iterable[K]) -> None:
        """Drop what is held of ``partitions`` (revoked, or rolled back)."""
        for partition in partitions:
            self._runs.pop(partition, None)
            self._latest.pop(partition, None)
            self._released.pop(partition, None)


def run_ahead(held: dict[K, int], paused: set[K], most: int) -> tuple[set[K], set[K]]:
    """Which partitions to stop fetching and which to fetch again: those holding more than
    ``most`` records, which ran ahead in event time of a partition that holds the merge back;
    those paused that hold at most half of it now (or nothing: forgotten, released).

    Under a backlog a fetch brings each partition a run of about the same bytes, so a topic of
    small records (labels) runs seconds of event time ahead of one of large records
    (predictions) with every fetch, until ``max_held`` lets everything go out of order (a
    pre-loaded backlog of 200,000 pairs, predictions and labels interleaved: 4% of the
    observations more than 2 s behind their model's latest, and up to 56% counted late by the
    detection). Kafka Streams bounds each
    partition's buffer the same way (``buffered.records.per.partition``).

    >>> run_ahead({"labels": 3_000, "predictions": 10}, set(), most=2_500)
    ({'labels'}, set())
    >>> run_ahead({"labels": 2_000}, {"labels"}, most=2_500)
    (set(), set())
    >>> run_ahead({"labels": 1_250}, {"labels", "gone"}, most=2_500) == (set(), {"labels", "gone"})
    True
    """
    pause = {partition for partition, n in held.items() if n > most} - paused
    resume = {partition for partition in paused if held.get(partition, 0) <= most // 2}
    return pause, resume


class Shares(NamedTuple):
    """How :func:`run_ahead` keeps a merge of ``partitions`` partitions within its bound."""

    per_partition: int
    """The most records a partition holds before it is paused."""
    per_fetch: int
    """The most records one fetch takes (of any partitions)."""


def shares(max_held: int, partitions: int, batch: int) -> Shares:
    """Each partition's share of ``max_held`` and the fetch size that keep ``partitions``
    partitions, each paused at most a fetch after it passed its share, within ``max_held``
    together (``partitions * (per_partition + per_fetch) <= max_held``): the merge never
    needs its last resort. A fetch takes ``batch`` records, or fewer when many partitions
    leave each a smaller share (at most half of it goes to the fetch).

    >>> shares(50_000, partitions=8, batch=2_000)  # two topics of 4 partitions
    Shares(per_partition=4250, per_fetch=2000)
    >>> shares(50_000, partitions=32, batch=2_000)  # two of 16: smaller fetches
    Shares(per_partition=781, per_fetch=781)
    """
    per_fetch = max(1, min(batch, max_held // (2 * max(1, partitions))))
    return Shares(max(1, max_held // max(1, partitions) - per_fetch), per_fetch)
