"""Notice when the consumer hands over a partition's records out of offset order.

Within one assignment Faust should hand over each partition's records one after another. A
*gap* (offsets skipped) means records were not processed, unless the topic was written by a
transactional producer, whose commit markers take an offset each; a *rewind* (an offset seen
again, or an earlier one) means records are processed twice. Either is counted (``pipeline``
hash ``offset_gaps`` / ``offset_rewinds``) and logged. A gap is how Faust's seek race after a
rebalance showed itself before :mod:`stream_app.runtimes.faust.seek_fence` closed it; a rewind
is what a seek leaves now.

>>> watch = OffsetWatch()
>>> [watch.see("labels", 0, offset) for offset in (7, 8, 10, 10)]
[None, None, 'offset_gaps', 'offset_rewinds']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

OffsetBreak = Literal["offset_gaps", "offset_rewinds"]


class OffsetWatch:
    """The last offset seen per (topic, partition) since it was assigned."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, int], int] = {}

    def see(self, topic: str, partition: int, offset: int) -> OffsetBreak | None:
        """Record ``offset``; say how it breaks the sequence, if it does."""
        last = self._last.get((topic, partition))
        self._last[(topic, partition)] = offset
        if last is None or offset == last + 1:  # the first record of an assignment, or the next
            return None
        return "offset_gaps" if offset > last else "offset_rewinds"

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions revoked: their next record starts a new sequence."""
        for topic, partition in partitions:
            self._last.pop((topic, partition), None)
