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

**Silence.** An interval closes only when a later prediction comes, so a model that stops
sending is not in the ``volume`` values until it sends again. The source also learns the
model's rate (:attr:`TrafficVolume.rate`, a moving mean of the rates it hands out, from
:data:`SILENCE_INTERVALS` of them on) and, with the dispersion, the gap ``G``
(:meth:`TrafficVolume.silence_gap`) that a Poisson stream at that *effective* rate (rate over
dispersion: bursts count as one) leaves once in :data:`SILENCE_DAYS` days, at least
:data:`SILENCE_FLOOR_SECONDS` and the grace. The model is **silent** once event time is ``G``
past its latest prediction ``t``: a :class:`Silence` at ``t + G``, decided from the model's
own state only, so it is the same whichever way it is revealed: by the model's own next
prediction (then in :attr:`TrafficVolume.found`, for the bank) or by an event-time clock
across models (:meth:`TrafficVolume.silence_at`, which the bank's ``advance`` asks). One per
gap: a later prediction re-arms it.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> volume = TrafficVolume(interval_seconds=10, grace_seconds=5)
>>> [volume.observe(t0 + timedelta(seconds=s)) for s in (1, 12, 13, 9, 26, 45, 3)]
[[], [], [], [], [0.2], [0.1, 0.0], []]
>>> volume.late
1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
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
SILENCE_INTERVALS = 10
"""Intervals handed out before the model's rate is trusted for a silence (the volume CUSUM's
grace period)."""
SILENCE_RATE_WEIGHT = 0.1
"""The weight of an interval's rate in the learned rate once it has 10 (it follows a diurnal
swing within a few intervals; the zeros of a gap pull it down, so a model that comes back is
judged cautiously until its rate is learned again)."""
SILENCE_DAYS = 10_000.0
"""A silence is a gap that Poisson traffic at the model's effective rate leaves once in this many
days (at 0.2 per second: 95 s; at one request every 8.7 minutes: 2.1 h)."""
SILENCE_FLOOR_SECONDS = 20.0
"""The shortest silence, whatever the rate: two of the default 10 s intervals, so a busy model
that stops is silent within 2 intervals; timestamps of different models come from different
clocks, and a fast model's pause of a few seconds is no outage."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A model went silent: no prediction for ``gap`` seconds after its latest, at ``last``
    (epoch seconds), at the learned ``rate`` (predictions per second, from ``intervals``
    intervals). It is silent from :attr:`at` on."""

    last: float
    gap: float
    rate: float
    intervals: int

    @property
    def at(self) -> float:
        """When the silence is established: ``last + gap`` (epoch seconds)."""
        return self.last + self.gap


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
        self.rate = 0.0
        """The learned rate: a moving mean of the rates handed out (predictions per second)."""
        self.rated = 0
        """Intervals handed out."""
        self._spread: float | None = None
        """The latest dispersion measured on :data:`DISPERSION_INTERVALS` intervals or more
        (kept when the interval lengthens and the sample starts again)."""
        self._gap: float | None = None
        """:meth:`silence_gap`, as of the latest interval handed out."""
        self._silent_at: float | None = None
        """The latest prediction's time when its gap was found a silence (one per gap)."""
        self.found: list[Silence] = []
        """Silences the model's own predictions revealed, for the bank to take (not state)."""

    def observe(self, time: datetime) -> list[float]:
        """Count a prediction at ``time``; the rates of the intervals it closed, oldest first."""
        return self._observe(time.timestamp())

    def _observe(self, seconds: float) -> list[float]:
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
                    rates.append(rate := count / self.interval_seconds)
                    self._learn(rate)
            self._next += 1
            empty = 0 if count else empty + 1
            if empty == MAX_EMPTY_INTERVALS:  # a long gap: skip ahead to the traffic
                self._next = min([closed_before, *self._counts])
            if self.adaptive:
                self._adapt()
        return rates

    def _learn(self, rate: float) -> None:
        """Take a handed-out rate into the learned rate, the dispersion and the silence gap."""
        self.rated += 1
        self.rate += max(1 / self.rated, SILENCE_RATE_WEIGHT) * (rate - self.rate)
        if self._counts_seen[0] >= DISPERSION_INTERVALS:
            self._spread = self.dispersion()
        self._gap = self.silence_gap()

    def silence_gap(self) -> float | None:
        """How long without a prediction makes the model silent (seconds): the gap Poisson
        traffic at its effective rate (the learned rate over the dispersion) leaves once in
        :data:`SILENCE_DAYS` days, at least :data:`SILENCE_FLOOR_SECONDS` and the grace; None
        until :data:`SILENCE_INTERVALS` intervals and a dispersion are known, or while the
        learned rate is 0."""
        if self.rated < SILENCE_INTERVALS or self._spread is None or self.rate <= 0:
            return None
        effective = self.rate / self._spread
        gaps_per_day = effective * 86_400 * SILENCE_DAYS
        gap = math.log(gaps_per_day) / effective if gaps_per_day > 1 else math.inf
        return max(SILENCE_FLOOR_SECONDS, self.grace_seconds, gap)

    def silence_deadline(self) -> float | None:
        """When the model is silent if nothing comes (epoch seconds); None if its gap is not
        known yet or this gap was found a silence already."""
        if self._gap is None or self.silent:
            return None
        return self._clock + self._gap

    @property
    def silent(self) -> bool:
        """Whether the gap since the latest prediction was found a silence."""
        return self._silent_at == self._clock

    def silence_at(self, clock: float) -> Silence | None:
        """The silence that an event-time ``clock`` (epoch seconds) past the deadline reveals,
        once per gap; None if it is not past."""
        deadline = self.silence_deadline()
        if deadline is None or clock <= deadline:
            return None
        assert self._gap is not None
        self._silent_at = self._clock
        return Silence(self._clock, self._gap, self.rate, self.rated)

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
        """Count a prediction; emit the ``volume`` of each interval it closed. A prediction
        that comes after the deadline reveals the silence before it (in :attr:`found`)."""
        seconds = event.timestamp.timestamp()
        gap = self._gap  # silence_at's own test first: it is on every prediction
        if gap is not None and seconds > self._clock + gap and (found := self.silence_at(seconds)):
            self.found.append(found)
        for rate in self._observe(seconds):
            emit(VOLUME, rate)

    def summary(self) -> dict[str, Figure]:
        """``late_for_volume``: the predictions that came after their interval was given out."""
        return {"late_for_volume": self.late}

    def state(self) -> dict[str, Any]:
        """The counts and clocks as plain values (:meth:`from_state`)."""
        state = {**vars(self), "_counts": list(self._counts.items())}
        del state["found"]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrafficVolume:
        volume = cls(state["interval_seconds"], state["grace_seconds"])  # the rest from state
        vars(volume).update({**state, "_counts": dict(state["_counts"])})
        return volume
