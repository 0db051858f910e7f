"""A Faust consumer whose seeks after a rebalance neither skip nor lose records.

After every rebalance faust-streaming 0.15.3's recovery *resumes* the stream partitions, then
seeks them to their committed offsets (``Consumer.perform_seek``), then resumes the flow, which
throws away the records waiting in the streams' queues. That lost records in two ways:

- A batch fetched before the seek went on being handed over after it. The seek had moved the
  read offset back, so Faust booked the distance to the next record as a "gap" (treated as
  acknowledged) and dropped the records fetched again from the committed offset as already
  read: a record was skipped and its offset committed.
- aiokafka's seek leaves a partition without a committed offset where it is, so the records of
  such a partition that had waited in a queue were never read again.

In driftstream that was a lost outcome or observation (``docs/architecture.md``, "Seeks after a
rebalance"). :class:`SeekFencedConsumer`

1. never runs a fetch and a seek at the same time, so every batch is fetched wholly before or
   wholly after a seek;
2. drops the rest of a batch fetched before a seek of its partition: the fetcher reads those
   records again from the new position (or they lie below the committed offset, processed);
3. leaves no read offset behind for a record handed over while its partition is sought, so the
   records read again from the new position are all accepted;
4. seeks a stream partition without a committed offset back to where it started, its earliest
   offset (the app reads with ``auto_offset_reset="earliest"``).

Records handed over before a seek come again: a duplicate, which the join and the detectors
recognise, never a gap.

This is the one module that reaches into Faust's private internals (``_getmany``,
``_read_offset``, ``_thread``, ``_is_changelog_tp``): ``FAUST_VERSION`` is the exact version
they were read from and ``pyproject.toml`` pins, and :func:`check_faust_version` refuses to run
on any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Iterable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka
from faust.types import TP, Message

FAUST_VERSION = "0.15.3"


def check_faust_version(installed: str = faust.__version__) -> None:
    """Refuse a faust-streaming other than the one this module's overrides were written for.

    >>> try:
    ...     check_faust_version("0.15.4")
    ... except RuntimeError as exc:
    ...     print(str(exc).split(":")[0])
    the Faust runtime needs faust-streaming 0.15.3 (installed
    """
    if installed != FAUST_VERSION:
        raise RuntimeError(
            f"the Faust runtime needs faust-streaming {FAUST_VERSION} (installed: {installed}): "
            "its seek fence overrides Faust internals; "
            f"pip install faust-streaming=={FAUST_VERSION}"
        )


class SeekFence:
    """Which fetched batches a seek made stale, per partition.

    >>> fence = SeekFence()
    >>> batch = fence.fetched()
    >>> fence.sought(["labels-0"])
    >>> fence.stale("labels-0", batch), fence.stale("labels-1", batch)
    (True, False)
    >>> fence.stale("labels-0", fence.fetched())
    False
    """

    def __init__(self) -> None:
        self._seeks = 0
        self._last_seek: dict[Hashable, int] = {}

    def fetched(self) -> int:
        """The stamp of a batch fetched now."""
        return self._seeks

    def sought(self, partitions: Iterable[Hashable]) -> None:
        """``partitions`` were moved to a new position: batches fetched until now are stale."""
        self._seeks += 1
        for partition in partitions:
            self._last_seek[partition] = self._seeks

    def stale(self, partition: Hashable, batch: int) -> bool:
        """Whether ``partition`` was sought after the batch stamped ``batch`` was fetched."""
        return self._last_seek.get(partition, 0) > batch


class SeekFencedConsumer(aiokafka.Consumer):
    """Faust's aiokafka consumer; it hands over no record fetched before a seek of its partition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fence = SeekFence()
        self._batch = self._fence.fetched()
        self._fetch_or_seek = asyncio.Lock()

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        async with self._fetch_or_seek:
            records = await super()._getmany(active_partitions, timeout)
            self._batch = self._fence.fetched()
        return records

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        async for tp, message in super().getmany(timeout):
            if self._fence.stale(tp, self._batch):
                continue  # fetched again from the position the seek set
            yield tp, message
            if self._fence.stale(tp, self._batch):  # sought while this record was handed over:
                self._read_offset[tp] = None  # accept what is read again from the new position

    async def perform_seek(self) -> None:
        async with self._fetch_or_seek:
            await super().perform_seek()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        # aiokafka moves only the partitions with a committed offset above zero; a stream
        # partition without one goes back to where it started (auto_offset_reset="earliest")
        moved = [tp for tp, offset in committed.items() if offset and offset > 0]
        restarted = [tp for tp in committed.keys() - moved if not self._is_changelog_tp(tp)]
        if restarted:
            await self._thread.seek_to_beginning(*restarted)
        self._fence.sought([*moved, *restarted])
        return committed

    async def seek(self, partition: TP, offset: int) -> None:
        async with self._fetch_or_seek:
            await super().seek(partition, offset)
            self._fence.sought([partition])

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        async with self._fetch_or_seek:
            await super().seek_wait(partitions)
            self._fence.sought(partitions)


class SeekFencedTransport(aiokafka.Transport):
    """Faust's aiokafka transport with :class:`SeekFencedConsumer`."""

    Consumer = SeekFencedConsumer
