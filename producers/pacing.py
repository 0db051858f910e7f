"""Hold a stream to a wall-clock rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def paced(
    items: Iterable[T],
    rate: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[T]:
    """Yield ``items`` at most ``rate`` per second on average (``rate <= 0``: as fast as possible).

    >>> list(paced(range(3), rate=0))
    [0, 1, 2]
    """
    if rate <= 0:
        yield from items
        return
    start = clock()
    for count, item in enumerate(items):
        wait = start + count / rate - clock()
        if wait > 0:
            sleep(wait)
        yield item
