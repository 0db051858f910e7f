"""The cyclic garbage collector set for a long stream of events.

A worker or a replay keeps many long-lived objects (join entries, windows, river's detectors)
and allocates a few short-lived ones per event, which reference counting frees: they hold no
cycles. CPython's collector still runs after every 700 net allocations and, every hundred of
those runs, over the whole heap, so its cost grows with the state held: on a 150,000-event
replay of the simulator it took 16% of the CPU (``farm-bench`` of ``driftstream replay``, the
same alerts either way), and a third of the Kafka-native worker's CPU per joined pair (198 ->
138 µs on 60,000 pre-loaded pairs, two runs each way). Collecting after every 100,000
allocations instead keeps what little cyclic garbage there is (exceptions' tracebacks, for
example) bounded, at no cost in memory that we measured (peak 271 MiB either way).

>>> import gc
>>> before = gc.get_threshold()
>>> collect_less_often()
>>> gc.get_threshold()[0]
100000
>>> gc.set_threshold(*before)
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000
"""Net allocations between collections of the youngest generation (CPython's default: 700)."""


def collect_less_often() -> None:
    """Set the collector for a long stream (the worker, ``replay``, ``calibrate``)."""
    gc.set_threshold(YOUNG_THRESHOLD, 50, 50)
