"""The last values of a signal in a numpy ring: the live estimate and the "after" side of an alert.

Values go in a batch at a time (:meth:`RecentWindow.extend`), gathered in a list of at most
:data:`GATHER` and then copied into the ring in one slice; the statistics are computed when
asked: the mean for a summary, the change point for an alert. A binary window keeps its 0/1
values as bytes.

>>> window = RecentWindow(size=3)
>>> window.extend([1.0, 2.0])
>>> window.extend([3.0, 4.0])
>>> window.mean, len(window), window.tail_sum(2)
(3.0, 3, 7.0)
>>> window = RecentWindow(size=100, binary=True)
>>> window.extend([0.0] * 70 + [1.0] * 30)
>>> window.change_point(100), window.change_point(40)
(30, 30)
>>> RecentWindow.from_state(window.state()).values().tolist() == window.values().tolist()
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

GATHER = 64
"""Values gathered in a list before they go into the ring in one copy (a copy costs about as
much for one value as for dozens; a float in a list takes four times its 8 bytes in the ring)."""


_EMPTY = {binary: np.zeros(0, dtype=np.uint8 if binary else np.float64) for binary in (False, True)}
"""The ring of every empty window, by ``binary`` (read-only: the first value grows it)."""
for _empty in _EMPTY.values():
    _empty.flags.writeable = False


class RecentWindow:
    """A sliding window over the last ``size`` values of a stream.

    Parameters
    ----------
    size
        How many of the latest values are kept.
    binary
        The values are 0.0 and 1.0 only: they are stored as bytes (a smaller state).
    """

    __slots__ = ("_end", "_len", "_pushed", "_ring", "binary", "size")

    def __init__(self, size: int, binary: bool = False) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self.binary = binary
        self._ring = _EMPTY[binary]
        """The values: in order from 0 while fewer than ``size`` (grown as needed, from a shared
        empty array: a window of a signal that never gets a value costs no array), then a ring."""
        self._end = 0  # where the next value goes
        self._len = 0
        self._pushed: list[float] = []  # values pushed one by one, not in the ring yet

    def __len__(self) -> int:
        return min(self.size, self._len + len(self._pushed))

    def push(self, value: float) -> None:
        """Append ``value``, dropping the oldest value when the window is full."""
        self.extend((value,))

    def _flush(self) -> None:
        if self._pushed:
            pushed, self._pushed = self._pushed, []
            self._write(pushed)

    def extend(self, values: Sequence[float] | Floats) -> None:
        """Append ``values`` in order, keeping the last ``size``."""
        if len(values) >= self.size:  # they replace the whole window
            self._pushed = []
            self._write(values)
            return
        self._pushed.extend(values)
        if len(self._pushed) >= GATHER:
            self._flush()

    def _write(self, values: Sequence[float] | Floats) -> None:
        count = len(values)
        if count == 0:
            return
        if len(self._ring) < self.size and self._len + count > len(self._ring):
            grown = np.zeros(
                min(self.size, max(2 * len(self._ring), 8, self._len + count)), self._ring.dtype
            )
            grown[: self._len] = self._ring[: self._len]
            self._ring = grown
            self._end = self._len % self.size
        if count >= self.size:
            self._ring[:] = values[count - self.size :]
            self._end, self._len = 0, self.size
            return
        end = self._end
        first = min(count, self.size - end)
        self._ring[end : end + first] = values[:first]
        if first < count:
            self._ring[: count - first] = values[first:]
        self._end = (end + count) % self.size
        self._len = min(self.size, self._len + count)

    def values(self) -> Floats:
        """The values, oldest first (a copy, as floats)."""
        ordered = self._ordered()
        return ordered.astype(np.float64, copy=self._len < self.size)  # not a view of the ring

    def _ordered(self) -> npt.NDArray[Any]:
        """The values, oldest first, as stored (a view of the ring while it is not full)."""
        self._flush()
        if self._len < self.size:
            return self._ring[: self._len]
        return np.concatenate((self._ring[self._end :], self._ring[: self._end]))

    @property
    def mean(self) -> float:
        """The mean of the window (0.0 when empty)."""
        return float(self.values().mean()) if len(self) else 0.0

    def tail_sum(self, count: int) -> float:
        """The sum of the latest ``count`` values (at most the whole window)."""
        return float(self.values()[-count:].sum()) if count > 0 else 0.0

    def change_point(self, last: int) -> int:
        """Estimate how many of the latest ``last`` values (>= 2) follow a change in mean."""
        return change_point(self.values()[-last:])

    def state(self) -> dict[str, Any]:
        """The window as plain values (:meth:`from_state` builds it again)."""
        return {"size": self.size, "binary": self.binary, "values": self._ordered().tobytes()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RecentWindow:
        window = cls(state["size"], state["binary"])
        dtype = np.uint8 if window.binary else np.float64
        window._write(np.frombuffer(state["values"], dtype=dtype))
        return window


def change_point(values: Floats) -> int:
    """How many of the latest of ``values`` (oldest first, at least 2) follow a change in mean.

    The least-squares split: the tail length ``k`` in ``1 .. n - 1`` maximising
    ``k * (n - k) * (mean(tail) - mean(head)) ** 2`` (the latest split on ties).

    >>> change_point(np.array([0.0] * 70 + [1.0] * 30))
    30
    """
    tail_first = values[::-1]
    n = len(tail_first)
    tails = np.cumsum(tail_first)[:-1]
    k = np.arange(1, n, dtype=np.float64)
    difference = tails / k - (tails[-1] + tail_first[-1] - tails) / (n - k)
    scores = k * (n - k) * difference * difference
    return int(np.argmax(scores)) + 1
