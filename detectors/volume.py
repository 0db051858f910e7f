"""A model's traffic as a signal: its predictions per second, interval by interval.

:class:`TrafficVolume` counts predictions per event-time interval and hands out the rate of
each interval once the latest prediction is ``grace_seconds`` past its end (an interval
without predictions gives 0.0), so a surge or a drop is a shift in the ``volume`` signal's
mean. A prediction of an interval already handed out is late: counted in ``late``, left out
of the rates. The first interval is not handed out: the model's traffic began somewhere
inside it, so its rate is too low. It is the bank's signal source ``source/volume``
(:mod:`detectors.sources`): it takes predictions only, and its summary figure is
``late_for_volume``.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> volume = TrafficVolume(interval_seconds=10, grace_seconds=5)
>>> [volume.observe(t0 + timedelta(seconds=s)) for s in (1, 12, 13, 9, 26, 45, 3)]
[[], [], [], [], [0.2], [0.1, 0.0], []]
>>> volume.late
1
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from detectors.signals import VOLUME, Signal

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.sources import Emit, Figure
    from schemas.events import PredictionEvent

MAX_EMPTY_INTERVALS = 1000
"""Empty intervals handed out at most after a gap in traffic (a longer gap gives this many)."""
EVENT_ORDER_GRACE_SECONDS = 10.0
"""The default grace where predictions come in event-time order, give or take the detection
stage's lateness (the Kafka-native runtime and the replay)."""
ARRIVAL_ORDER_GRACE_SECONDS = 600.0
"""The default grace where they come in arrival order (the Faust runtime): a backlog is read
partition by partition, minutes of event time apart."""


class TrafficVolume:
    """Predictions per second of a model over consecutive event-time intervals.

    Parameters
    ----------
    interval_seconds
        The length of an interval.
    grace_seconds
        How long after an interval's end its predictions are still counted; its rate is handed
        out then.
    """

    name: ClassVar[str] = "source/volume"
    signals: ClassVar[tuple[Signal, ...]] = (VOLUME,)
    on_outcome: ClassVar[None] = None

    def __init__(self, interval_seconds: float, grace_seconds: float) -> None:
        if interval_seconds <= 0 or grace_seconds < 0:
            raise ValueError("interval_seconds must be positive and grace_seconds not negative")
        self.interval_seconds = interval_seconds
        self.grace_seconds = grace_seconds
        self.late = 0
        """Predictions that came after their interval was handed out."""
        self._counts: dict[int, int] = {}
        self._first: int | None = None
        self._next = 0
        self._clock = float("-inf")

    def observe(self, time: datetime) -> list[float]:
        """Count a prediction at ``time``; the rates of the intervals it closed, oldest first."""
        seconds = time.timestamp()
        interval = int(seconds // self.interval_seconds)
        if self._first is None:
            self._first = self._next = interval
        if interval < self._next:
            self.late += 1
        else:
            self._counts[interval] = self._counts.get(interval, 0) + 1
        self._clock = max(self._clock, seconds)
        closed_before = int((self._clock - self.grace_seconds) // self.interval_seconds)
        rates: list[float] = []
        empty = 0
        while self._next < closed_before:
            count = self._counts.pop(self._next, 0)
            if self._next != self._first:
                rates.append(count / self.interval_seconds)
            self._next += 1
            empty = 0 if count else empty + 1
            if empty == MAX_EMPTY_INTERVALS:  # a long gap: skip ahead to the traffic
                self._next = min([closed_before, *self._counts])
        return rates

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> TrafficVolume:
        """The bank's volume: its interval and grace (by default longer in arrival order)."""
        grace = config.volume_grace_seconds
        if grace is None:
            grace = ARRIVAL_ORDER_GRACE_SECONDS if arrival_order else EVENT_ORDER_GRACE_SECONDS
        return cls(config.volume_interval_seconds, grace)

    def on_prediction(self, event: PredictionEvent, emit: Emit) -> None:
        """Count a prediction; emit the ``volume`` of each interval it closed."""
        for rate in self.observe(event.timestamp):
            emit(VOLUME, rate)

    def summary(self) -> dict[str, Figure]:
        """``late_for_volume``: the predictions that came after their interval was given out."""
        return {"late_for_volume": self.late}

    def state(self) -> dict[str, Any]:
        """The counts and clocks as plain values (:meth:`from_state`)."""
        return {**vars(self), "_counts": list(self._counts.items())}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrafficVolume:
        volume = cls(state["interval_seconds"], state["grace_seconds"])
        vars(volume).update({**state, "_counts": dict(state["_counts"])})
        return volume
