"""One stream of a model's observations released in event-time order behind a watermark.

The join stages of several workers write a model's observations to one ``observations``
partition, each in its own event-time order; under a backlog one stage runs ahead of another,
and the detectors would see the model's stream in runs. An :class:`EventTimeOrder` holds each
record until the watermark (the latest time seen, less ``lateness``) passes it, then releases
what it holds in ``(time, request id)`` order, so any arrival order within the lateness gives
the same sequence. A record that comes after one it should precede was released is **late**:
it is released at once (still applied, never dropped) and the caller counts it.

Each held record keeps the offset it was read at: :meth:`EventTimeOrder.oldest_offset` is where
reading must start again after a crash, so a transactional runtime commits no further. Records
read again are told apart by :meth:`EventTimeOrder.applied` (``frontier``: the last key
released; a record read again at or before it was applied, one after it is held again).

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> order: EventTimeOrder[str] = EventTimeOrder(timedelta(seconds=10))
>>> [order.push(t + timedelta(seconds=s), r, offset, r) for offset, (r, s) in
...  enumerate([("a", 0), ("c", 8), ("b", 4), ("d", 15), ("e", 30)])]
[(False, []), (False, []), (False, []), (False, ['a', 'b']), (False, ['c', 'd'])]
>>> order.oldest_offset(), order.push(t + timedelta(seconds=1), "x", 5, "x")
(4, (True, ['x']))
>>> order.drain(), order.oldest_offset()
(['e'], None)
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")

OrderKey = tuple[datetime, str]
"""Where a record goes in the order: its event time, then its request id (ties)."""

MAX_HELD = 50_000
"""Past this many held records the oldest go regardless of the watermark (in order)."""


@dataclass
class EventTimeOrder(Generic[T]):
    """Records of one stream, released in :data:`OrderKey` order behind a watermark.

    Parameters
    ----------
    lateness
        How far behind the latest time seen a record may be stamped and still take its place
        in the order. Zero releases every record at once: arrival order, each record stamped
        before one already released counted as late.
    max_held
        The most records held; the oldest go beyond it.
    """

    lateness: timedelta
    max_held: int = MAX_HELD
    latest: datetime | None = None
    """The latest event time pushed."""
    frontier: OrderKey | None = None
    """The key of the last record released in order (a late one does not move it)."""
    _held: list[tuple[OrderKey, int, T]] = field(default_factory=list)
    _offsets: deque[int] = field(default_factory=deque)
    _gone: set[int] = field(default_factory=set)

    @property
    def held(self) -> int:
        return len(self._held)

    def push(self, time: datetime, request_id: str, offset: int, item: T) -> tuple[bool, list[T]]:
        """Take one record read at ``offset``; whether it is late, and what is released now
        in order (the record itself first when it is late)."""
        key = (time, request_id)
        if self.frontier is not None and key <= self.frontier:
            return True, [item]
        if self.latest is None or time > self.latest:
            self.latest = time
        heapq.heappush(self._held, (key, offset, item))
        self._offsets.append(offset)
        watermark = self.latest - self.lateness
        released = []
        while self._held and (self._held[0][0][0] <= watermark or self.held > self.max_held):
            released.append(self._pop())
        return False, released

    def applied(self, time: datetime, request_id: str) -> bool:
        """Whether a record read again (at or before the last offset seen) was applied: it is
        at or before the frontier. One after it was held, and is pushed again."""
        return self.frontier is not None and (time, request_id) <= self.frontier

    def drain(self) -> list[T]:
        """Release everything held, in order (the stream went quiet or ended)."""
        return [self._pop() for _ in range(self.held)]

    def oldest_offset(self) -> int | None:
        """The smallest offset of a held record (None: nothing held)."""
        while self._offsets and self._offsets[0] in self._gone:
            self._gone.discard(self._offsets.popleft())
        if not self._offsets:
            self._gone.clear()  # empty already: clear() gives back the table discard() keeps
            return None
        return self._offsets[0]

    def marks(self) -> tuple[datetime | None, OrderKey | None]:
        """What a snapshot keeps (the held records are read again instead)."""
        return self.latest, self.frontier

    def resume(self, marks: tuple[datetime | None, OrderKey | None]) -> None:
        """Go on from a snapshot's :meth:`marks`."""
        self.latest, self.frontier = marks

    def _pop(self) -> T:
        key, offset, item = heapq.heappop(self._held)
        self.frontier = key
        self._gone.add(offset)
        if len(self._gone) > self.held:  # most released: forget them now, not at a commit
            self.oldest_offset()
        return item
