"""A model's traffic as a signal: its predictions per second, interval by interval.

:class:`TrafficVolume` counts predictions per event-time interval and hands out the rate of
each interval once the latest prediction is ``grace_seconds`` past its end (an interval
without predictions gives 0.0), so a surge or a drop is a shift in the ``volume`` signal's
mean. A prediction of an interval already handed out is late: counted in ``late``, left out
of the rates. The first interval is not handed out: the model's traffic began somewhere
inside it, so its rate is too low. With ``adaptive`` (the bank's default,
``volume_adaptive_interval``) the interval is the configured one times the smallest power of
two that gives :data:`TARGET_COUNT` *effective* predictions per interval at the model's rate
so far: the count divided by its dispersion (variance over mean of the intervals' counts, 1
for Poisson traffic, about 40 for bursts of 20 requests), so a model with one request every
few minutes is judged on intervals of hours, one with thousands a second on the configured
10 s, and bursty traffic on intervals long enough for its bursts to average out. It only
lengthens, at a boundary of the longer interval (the rates it hands out stay predictions per
second); the intervals too short for the rate that close before that boundary are not handed
out (mostly empty, they would read as a drop). It is the bank's signal source ``source/volume``
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

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from detectors.signals import VOLUME, Signal

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.sources import Emit, Figure
    from schemas.events import PredictionEvent

TARGET_COUNT = 32
"""The predictions per interval an adaptive interval is lengthened to, at the rate so far: a
Poisson count of 32 is enough for :class:`~detectors.poisson.RateShift` to see a drop to zero
within 2 intervals, and rarely fires on a stable stream."""
DISPERSION_INTERVALS = 8
"""Closed intervals needed before their counts' dispersion lengthens the interval."""
DISPERSION_SAMPLE = 32
"""Closed intervals, the first at each length, whose counts give the dispersion."""
MAX_INTERVAL_FACTOR = 2**16
"""The longest adaptive interval, in base intervals (7.6 days of 10 s)."""
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
    figures: ClassVar[Mapping[str, str | None]] = {"late_for_volume": None}
    on_outcome: ClassVar[None] = None

    def __init__(
        self, interval_seconds: float, grace_seconds: float, *, adaptive: bool = False
    ) -> None:
        if interval_seconds <= 0 or grace_seconds < 0:
            raise ValueError("interval_seconds must be positive and grace_seconds not negative")
        self.interval_seconds = interval_seconds
        """The current interval (the base one, or a power-of-two multiple once adapted)."""
        self.grace_seconds = grace_seconds
        self.adaptive = adaptive
        self.late = 0
        """Predictions that came after their interval was handed out."""
        self._counts: dict[int, int] = {}
        self._first: int | None = None
        self._next = 0
        self._clock = float("-inf")
        self._start = 0.0
        """The time of the first prediction."""
        self._closed = 0
        """Predictions in the intervals handed out (or skipped)."""
        self._too_short = False
        """Whether the rate so far wants a longer interval than the current one."""
        self._counts_seen = (0, 0.0, 0.0)
        """The first closed intervals' counts at the current length: n, sum, sum of squares."""

    def observe(self, time: datetime) -> list[float]:
        """Count a prediction at ``time``; the rates of the intervals it closed, oldest first."""
        seconds = time.timestamp()
        interval = int(seconds // self.interval_seconds)
        if self._first is None:
            self._first = self._next = interval
            self._start = seconds
        if interval < self._next:
            self.late += 1
        else:
            self._counts[interval] = self._counts.get(interval, 0) + 1
        self._clock = max(self._clock, seconds)
        rates: list[float] = []
        empty = 0
        while self._next < (closed_before := self._closed_before()):
            count = self._counts.pop(self._next, 0)
            self._closed += count
            if self._next != self._first:
                n, total, squares = self._counts_seen
                if n < DISPERSION_SAMPLE:  # then fixed: a surge is not taken for dispersion
                    self._counts_seen = (n + 1, total + count, squares + count * count)
                if not self._too_short:
                    rates.append(count / self.interval_seconds)
            self._next += 1
            empty = 0 if count else empty + 1
            if empty == MAX_EMPTY_INTERVALS:  # a long gap: skip ahead to the traffic
                self._next = min([closed_before, *self._counts])
            if self.adaptive:
                self._adapt()
        return rates

    def _closed_before(self) -> int:
        return int((self._clock - self.grace_seconds) // self.interval_seconds)

    def _adapt(self) -> None:
        """Lengthen the interval (by a power of two, at a boundary of the longer one) while the
        model's rate so far gives fewer than :data:`TARGET_COUNT` effective predictions per
        interval (:meth:`dispersion`)."""
        elapsed = self._next * self.interval_seconds - self._start
        if elapsed < self.interval_seconds:
            return
        expected = self._closed / elapsed * self.interval_seconds / self.dispersion()
        factor = 1
        while expected * factor < TARGET_COUNT and factor < MAX_INTERVAL_FACTOR:
            factor *= 2
        self._too_short = factor > 1
        if factor == 1 or self._next % factor:
            return
        self._too_short = False
        self._counts_seen = (0, 0.0, 0.0)
        self.interval_seconds *= factor
        counts: dict[int, int] = {}
        for interval, count in self._counts.items():
            counts[interval // factor] = counts.get(interval // factor, 0) + count
        self._counts = counts
        self._next //= factor
        self._first = self._next - 1  # the partial first interval is behind

    def dispersion(self) -> float:
        """Variance over mean of the counts of the first :data:`DISPERSION_SAMPLE` closed
        intervals at the current length, at least 1 (Poisson traffic); 1 until
        :data:`DISPERSION_INTERVALS` intervals are known."""
        n, total, squares = self._counts_seen
        if n < DISPERSION_INTERVALS or total <= 0:
            return 1.0
        mean = total / n
        return max(1.0, (squares / n - mean * mean) * n / (n - 1) / mean)

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> TrafficVolume:
        """The bank's volume: its (base) interval, adapted to the model's rate unless the config
        says otherwise, and grace (by default longer in arrival order)."""
        grace = config.volume_grace_seconds
        if grace is None:
            grace = ARRIVAL_ORDER_GRACE_SECONDS if arrival_order else EVENT_ORDER_GRACE_SECONDS
        return cls(config.volume_interval_seconds, grace, adaptive=config.volume_adaptive_interval)

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
        volume = cls(state["interval_seconds"], state["grace_seconds"])  # the rest from state
        vars(volume).update({**state, "_counts": dict(state["_counts"])})
        return volume
