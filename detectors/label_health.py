"""Are the labels still coming, and how late? Label coverage and delay within a horizon.

Ground truth arrives late, and when it stops nothing fails: the concept signals just stop
moving. :class:`LabelHealth` buckets a model's predictions by event-time interval and records
the delays of their joined outcomes. Once the model's predictions are ``horizon_seconds``
(plus one interval) past a bucket, the bucket is closed and given out:

- ``coverage``: one 0/1 value per prediction (1: it got its label within the horizon), its
  labelled ones spread evenly, so the ``label_coverage`` signal is a binary stream whose mean
  is the coverage;
- ``delays``: the seconds from prediction to label of its labelled ones (``label_delay``), in
  the order of their predictions (in arrival order they would rise within every bucket).

It runs on the predictions' clock, not the labels', so it keeps closing buckets when the
labels stop. Closed buckets are complete samples: at the start of a stream the labels that
have arrived are the quick ones, and at the end of a recording the slow ones, but a bucket
closes only once all its labels within the horizon have had their time.

It is the bank's signal source ``source/label_health`` (:mod:`detectors.sources`): predictions
close buckets, outcomes record delays, and its summary figure ``labels_past_horizon`` counts
the outcomes that came after their bucket closed (:attr:`LabelHealth.uncounted`). Its state
keeps every labelled delay of its open buckets: at 10 predictions per second and the default
600 s horizon, about 100 KB.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> health = LabelHealth(horizon_seconds=60, interval_seconds=10)
>>> for s in range(4):
...     _ = health.prediction(t0 + timedelta(seconds=s))
>>> health.outcome(t0 + timedelta(seconds=1), label_time=t0 + timedelta(seconds=31))
>>> health.prediction(t0 + timedelta(seconds=85))
ClosedBuckets(coverage=[0.0, 0.0, 0.0, 1.0], delays=[30.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from detectors.signals import LABEL_COVERAGE, LABEL_DELAY, Signal

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.join import JoinedOutcome
    from detectors.sources import Emit, Figure
    from schemas.events import PredictionEvent


@dataclass(slots=True)
class ClosedBuckets:
    """What closing buckets gave out: coverage values (0/1) and label delays (seconds)."""

    coverage: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Bucket:
    predictions: int = 0
    delays: list[tuple[float, float]] = field(default_factory=list)  # (prediction time, delay)


class LabelHealth:
    """Per-interval predictions and the delays of their outcomes, closed after a horizon.

    Parameters
    ----------
    horizon_seconds
        How long after its prediction a label still counts as arrived.
    interval_seconds
        The event-time width of a bucket of predictions.
    """

    name: ClassVar[str] = "source/label_health"
    signals: ClassVar[tuple[Signal, ...]] = (LABEL_COVERAGE, LABEL_DELAY)

    def __init__(self, horizon_seconds: float, interval_seconds: float) -> None:
        if horizon_seconds <= 0 or interval_seconds <= 0:
            raise ValueError("horizon_seconds and interval_seconds must be positive")
        self.horizon_seconds = horizon_seconds
        self.interval_seconds = interval_seconds
        self._buckets: dict[int, _Bucket] = {}
        """Open buckets by interval, oldest first (a bucket is opened only after the newest)."""
        self.uncounted = 0
        """Outcomes whose bucket was already closed (labelled after the horizon)."""

    def prediction(self, time: datetime) -> ClosedBuckets:
        """Count a prediction at ``time``; what the buckets it closed gave out."""
        interval = self._interval(time)
        if not self._buckets or interval > next(reversed(self._buckets)):
            self._buckets[interval] = _Bucket()
        bucket = self._buckets.get(interval)
        if bucket is None:  # late, into a gap or before the oldest: the bucket before it
            earlier = (b for i, b in reversed(self._buckets.items()) if i <= interval)
            bucket = next(earlier, None) or next(iter(self._buckets.values()))
        bucket.predictions += 1
        closing = time.timestamp() - self.horizon_seconds - self.interval_seconds
        closed = ClosedBuckets()
        while self._buckets and (next(iter(self._buckets)) + 1) * self.interval_seconds < closing:
            done = self._buckets.pop(next(iter(self._buckets)))
            labelled = min(len(done.delays), done.predictions)
            closed.coverage.extend(_spread(labelled, done.predictions))
            closed.delays.extend(delay for _, delay in sorted(done.delays))
        return closed

    def outcome(self, prediction_time: datetime, label_time: datetime) -> None:
        """Count the outcome of a prediction made at ``prediction_time``, labelled at
        ``label_time`` (a label before its prediction has delay 0)."""
        bucket = self._buckets.get(self._interval(prediction_time))
        delay = max(0.0, (label_time - prediction_time).total_seconds())
        if bucket is not None and delay <= self.horizon_seconds:
            bucket.delays.append((prediction_time.timestamp(), delay))
        else:
            self.uncounted += 1

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> LabelHealth:
        """The bank's label health: its horizon, buckets as wide as a volume interval."""
        return cls(config.label_horizon_seconds, config.volume_interval_seconds)

    def on_prediction(self, event: PredictionEvent, emit: Emit) -> None:
        """Count a prediction; emit what the buckets it closed gave out."""
        closed = self.prediction(event.timestamp)
        if closed.coverage:
            for covered in closed.coverage:
                emit(LABEL_COVERAGE, covered)
            for delay in closed.delays:
                emit(LABEL_DELAY, delay)

    def on_outcome(self, outcome: JoinedOutcome, emit: Emit) -> None:
        """Count an outcome's label delay (nothing to emit until its bucket closes)."""
        self.outcome(outcome.prediction_time, outcome.label_time)

    def summary(self) -> dict[str, Figure]:
        """``labels_past_horizon``: the outcomes whose bucket was already closed."""
        return {"labels_past_horizon": self.uncounted}

    def state(self) -> dict[str, Any]:
        """The open buckets and counts as plain values (:meth:`from_state`)."""
        buckets = [(i, b.predictions, b.delays) for i, b in self._buckets.items()]
        return {
            "horizon_seconds": self.horizon_seconds,
            "interval_seconds": self.interval_seconds,
            "buckets": buckets,
            "uncounted": self.uncounted,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelHealth:
        health = cls(state["horizon_seconds"], state["interval_seconds"])
        health._buckets = {i: _Bucket(n, list(delays)) for i, n, delays in state["buckets"]}
        health.uncounted = state["uncounted"]
        return health

    def _interval(self, time: datetime) -> int:
        return int(time.timestamp() // self.interval_seconds)


def _spread(ones: int, n: int) -> list[float]:
    """``n`` values of which ``ones`` are 1.0, spread evenly (each 1 as late as it can be).

    >>> _spread(2, 5)
    [0.0, 0.0, 1.0, 0.0, 1.0]
    """
    return [float((i + 1) * ones // n - i * ones // n) for i in range(n)]
