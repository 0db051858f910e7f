"""The last values of a signal, with their running sum: the "after" side of an alert.

>>> window = RecentWindow(size=3)
>>> for value in [1.0, 2.0, 3.0, 4.0]:
...     window.push(value)
>>> window.mean, len(window), window.tail_sum(2)
(3.0, 3, 7.0)
>>> window = RecentWindow(size=100)
>>> for value in [0.0] * 70 + [1.0] * 30:
...     window.push(value)
>>> window.change_point(100), window.change_point(40)
(30, 30)
"""

from __future__ import annotations

from collections import deque
from itertools import islice


class RecentWindow:
    """A sliding window over the last ``size`` values of a stream.

    Parameters
    ----------
    size
        How many of the latest values are kept.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._values: deque[float] = deque(maxlen=size)
        self._sum = 0.0

    def __len__(self) -> int:
        return len(self._values)

    def push(self, value: float) -> None:
        """Append ``value``, dropping the oldest value when the window is full."""
        if len(self._values) == self._values.maxlen:
            self._sum -= self._values[0]
        self._values.append(value)
        self._sum += value

    @property
    def mean(self) -> float:
        """The mean of the window (0.0 when empty)."""
        return self._sum / len(self._values) if self._values else 0.0

    def tail_sum(self, count: int) -> float:
        """The sum of the latest ``count`` values (at most the whole window)."""
        return sum(islice(reversed(self._values), count))

    def change_point(self, last: int) -> int:
        """Estimate how many of the latest ``last`` values (>= 2) follow a change in mean.

        The least-squares split: the tail length ``k`` in ``1 .. last - 1`` maximising
        ``k * (last - k) * (mean(tail) - mean(head)) ** 2`` (the latest split on ties).
        """
        values = list(islice(reversed(self._values), last))
        total = sum(values)
        best_k, best_score, tail = 1, -1.0, 0.0
        for k, value in enumerate(values[:-1], start=1):
            tail += value
            head_n = len(values) - k
            difference = tail / k - (total - tail) / head_n
            score = k * head_n * difference * difference
            if score > best_score:
                best_k, best_score = k, score
        return best_k
