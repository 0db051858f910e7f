"""Are the labels still coming, and how late? Label coverage and delay within a horizon.

Ground truth arrives late, and when it stops nothing fails: the concept signals just stop
moving. :class:`LabelHealth` buckets a model's predictions by event-time interval and counts
how many of them got their label within the horizon. Once the model's predictions are the
horizon (plus one interval) past a bucket, the bucket is closed and gives out ``coverage``:
one 0/1 value per prediction (1: it got its label within the horizon), its labelled ones
spread evenly, so the ``label_coverage`` signal is a binary stream whose mean is the coverage,
and the delays of its labelled ones (``label_delay``: seconds from prediction to label, 0 for a
label before its prediction), each the middle of its sketch bin (within 19%), in an order
shuffled by the bucket (in arrival order they would rise within every bucket; and a stream of
delays in arrival order is biased: quick labels first, slow ones last). It runs on the
predictions' clock, not the labels', so it keeps closing buckets when the labels stop. Closed
buckets are complete samples: a bucket closes only once all its labels within the horizon
have had their time.

**The horizon learns the model's delays.** ``horizon_seconds`` (the bank's
``label_horizon_seconds``, default 3600 s: keep it at most the join's TTL) is the cap and the
initial value. With ``learned``, every outcome's delay goes into a fixed-size sketch (counts
in :data:`SKETCH_BINS` bins, 2 per doubling of the delay, halved when they reach
:data:`SKETCH_HALVING`), and the horizon becomes :data:`MARGIN` times the sketch's
:data:`QUANTILE` (the bin's upper edge), at most the cap, once :data:`LEARN_AFTER` delays are
in and the predictions span twice that horizon (so the slow labels of the first predictions had
their time). Labels that stop are then seen within about ``2 p99`` plus an interval of event
time instead of the cap (plus another interval in arrival order, where the bank's buckets wait
an interval past the horizon). The state is bounded: per open bucket its predictions and its
delays' bin counts, and the sketch.

It is the bank's signal source ``source/label_health`` (:mod:`detectors.sources`): predictions
close buckets, outcomes count and give their delays, and its summary figure
``labels_past_horizon`` counts the outcomes that came after their bucket closed
(:attr:`LabelHealth.uncounted`). Labels later than the join's TTL never reach it: they are the
join's ``orphan_labels``.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> health = LabelHealth(horizon_seconds=60, interval_seconds=10)
>>> for s in range(4):
...     _ = health.prediction(t0 + timedelta(seconds=s))
>>> health.outcome(t0 + timedelta(seconds=1), label_time=t0 + timedelta(seconds=31))
>>> health.prediction(t0 + timedelta(seconds=85))
ClosedBuckets(coverage=[0.0, 0.0, 0.0, 1.0], delays=[26.9])
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from detectors.signals import LABEL_COVERAGE, LABEL_DELAY, Signal

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.join_buffer import JoinedOutcome
    from detectors.sources import Emit, Figure
    from schemas.events import PredictionEvent

SKETCH_BINS = 56
"""Delay bins: ``[0, 1)`` s, then ``[2**((k-1)/2), 2**(k/2))`` s for bin k (the last one open)."""
SKETCH_HALVING = 20_000
"""The sketch's counts are halved when they sum to this (recent delays weigh more)."""
LEARN_AFTER = 100
"""Delays in the sketch before the horizon is learned."""
QUANTILE = 0.99
MARGIN = 2.0
"""The learned horizon: ``MARGIN`` times the ``QUANTILE`` of the delays."""
LEARN_EVERY = 16
"""The learned horizon is recomputed every this many outcomes."""


@dataclass(slots=True)
class ClosedBuckets:
    """What closing buckets gave out: coverage values (0/1) and label delays (seconds)."""

    coverage: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)


class LabelHealth:
    """Per-interval predictions and how many got their label within the horizon.

    Parameters
    ----------
    horizon_seconds
        How long after its prediction a label still counts as arrived: the cap and initial
        value of the learned horizon.
    interval_seconds
        The event-time width of a bucket of predictions.
    learned
        Learn the horizon from the delays (see the module).
    """

    name: ClassVar[str] = "source/label_health"
    signals: ClassVar[tuple[Signal, ...]] = (LABEL_COVERAGE, LABEL_DELAY)
    figures: ClassVar[Mapping[str, str | None]] = {
        "labels_past_horizon": None,
        "label_horizon_seconds": "How long after its prediction a label counts as arrived for "
        "label_coverage (learned from the model's label delays).",
    }

    def __init__(
        self,
        horizon_seconds: float,
        interval_seconds: float,
        *,
        learned: bool = False,
        slack_seconds: float | None = None,
    ) -> None:
        if horizon_seconds <= 0 or interval_seconds <= 0:
            raise ValueError("horizon_seconds and interval_seconds must be positive")
        self.horizon_seconds = horizon_seconds
        """The cap (and initial value) of the horizon."""
        self.interval_seconds = interval_seconds
        self.learned = learned
        self.slack_seconds = interval_seconds if slack_seconds is None else slack_seconds
        """How much longer than the horizon a bucket waits (predictions out of order)."""
        self.horizon = horizon_seconds
        """The horizon in force."""
        self._buckets: dict[int, list[int]] = {}
        """Open buckets by interval, oldest first: [predictions, then bin and count of each bin
        of the delays of its labels within the horizon] (a bucket is opened only after the
        newest)."""
        self.sketch = [0] * SKETCH_BINS
        self.labels = 0
        """Outcomes seen."""
        self._start: float | None = None
        self._clock = float("-inf")
        self.uncounted = 0
        """Outcomes whose bucket was already closed (labelled after the horizon)."""

    def prediction(self, time: datetime) -> ClosedBuckets:
        """Count a prediction at ``time``; what the buckets it closed gave out."""
        interval = self._interval(time)
        seconds = time.timestamp()
        if self._start is None:
            self._start = seconds
        self._clock = max(self._clock, seconds)
        if not self._buckets or interval > next(reversed(self._buckets)):
            self._buckets[interval] = [0]
        bucket = self._buckets.get(interval)
        if bucket is None:  # late, into a gap or before the oldest: the bucket before it
            earlier = (b for i, b in reversed(self._buckets.items()) if i <= interval)
            bucket = next(earlier, None) or next(iter(self._buckets.values()))
        bucket[0] += 1
        closing = seconds - self.horizon - self.slack_seconds
        closed = ClosedBuckets()
        while self._buckets and (next(iter(self._buckets)) + 1) * self.interval_seconds < closing:
            index = next(iter(self._buckets))
            predictions, *bins = self._buckets.pop(index)
            delays = [
                _middle(k) for k, n in zip(bins[::2], bins[1::2], strict=True) for _ in range(n)
            ]
            closed.coverage.extend(_spread(min(len(delays), predictions), predictions))
            random.Random(index).shuffle(delays)
            closed.delays.extend(delays)
        return closed

    def outcome(self, prediction_time: datetime, label_time: datetime) -> None:
        """Count the outcome of a prediction made at ``prediction_time``, labelled at
        ``label_time`` (a label before its prediction has delay 0)."""
        delay = max(0.0, (label_time - prediction_time).total_seconds())
        bucket = self._buckets.get(self._interval(prediction_time))
        if bucket is not None and delay <= self.horizon:
            k = _bin(delay)
            at = next((j for j in range(1, len(bucket), 2) if bucket[j] == k), None)
            if at is None:
                bucket += [k, 1]
            else:
                bucket[at + 1] += 1
        else:
            self.uncounted += 1
        if self.learned:
            self._learn(delay)

    def _learn(self, delay: float) -> None:
        self.labels += 1
        self.sketch[_bin(delay)] += 1
        if sum(self.sketch) >= SKETCH_HALVING:
            self.sketch = [count // 2 for count in self.sketch]
        if self.labels < LEARN_AFTER or self.labels % LEARN_EVERY:
            return
        horizon = min(self.horizon_seconds, MARGIN * quantile(self.sketch, QUANTILE))
        if self._start is not None and self._clock - self._start >= 2 * horizon:
            self.horizon = horizon

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> LabelHealth:
        """The bank's label health: its horizon (learned unless the config says otherwise, or
        the observations come in arrival order: a backlog read partition by partition puts
        labels far behind their predictions, which a learned horizon of seconds would count
        as missing), buckets as wide as a volume interval, which close the horizon after their
        end (plus an interval in arrival order)."""
        return cls(
            config.label_horizon_seconds,
            config.volume_interval_seconds,
            learned=config.label_horizon_learned and not arrival_order,
            slack_seconds=config.volume_interval_seconds if arrival_order else 0.0,
        )

    def on_prediction(self, event: PredictionEvent, emit: Emit) -> None:
        """Count a prediction; emit what the buckets it closed gave out."""
        closed = self.prediction(event.timestamp)
        for covered in closed.coverage:
            emit(LABEL_COVERAGE, covered)
        for delay in closed.delays:
            emit(LABEL_DELAY, delay)

    def on_outcome(self, outcome: JoinedOutcome, emit: Emit) -> None:
        """Count an outcome's label delay (nothing to emit until its bucket closes)."""
        self.outcome(outcome.prediction_time, outcome.label_time)

    def summary(self) -> dict[str, Figure]:
        """``labels_past_horizon``: the outcomes whose bucket was already closed;
        ``label_horizon_seconds``: how long after its prediction a label counts now (learned,
        or the configured one until enough delays were seen)."""
        return {"labels_past_horizon": self.uncounted, "label_horizon_seconds": self.horizon}

    def state(self) -> dict[str, Any]:
        """The open buckets, the sketch and the counts as plain values (:meth:`from_state`)."""
        return {
            "horizon_seconds": self.horizon_seconds,
            "interval_seconds": self.interval_seconds,
            "learned": self.learned,
            "slack_seconds": self.slack_seconds,
            "horizon": self.horizon,
            "buckets": [(i, *bucket) for i, bucket in self._buckets.items()],
            "sketch": list(self.sketch),
            "labels": self.labels,
            "start": self._start,
            "clock": self._clock,
            "uncounted": self.uncounted,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelHealth:
        """Also reads the state of the unbounded version (every labelled delay per bucket)."""
        buckets: dict[int, list[int]] = {}
        for i, n, *rest in state["buckets"]:
            if rest and isinstance(rest[0], list | tuple):  # (prediction time, delay) pairs
                bins: dict[int, int] = {}
                for _, delay in rest[0]:
                    bins[_bin(delay)] = bins.get(_bin(delay), 0) + 1
                rest = [x for pair in bins.items() for x in pair]
            buckets[i] = [n, *rest]
        health = cls(
            state["horizon_seconds"],
            state["interval_seconds"],
            learned=state.get("learned", False),
            slack_seconds=state.get("slack_seconds"),
        )
        health._buckets = buckets
        health.horizon = state.get("horizon", health.horizon_seconds)
        health.sketch = list(state.get("sketch", health.sketch))
        health.labels = state.get("labels", 0)
        health._start = state.get("start")
        health._clock = state.get("clock", float("-inf"))
        health.uncounted = state["uncounted"]
        return health

    def _interval(self, time: datetime) -> int:
        return int(time.timestamp() // self.interval_seconds)


def _bin(delay: float) -> int:
    """The sketch bin of ``delay`` seconds."""
    return 0 if delay < 1 else min(SKETCH_BINS - 1, int(2 * math.log2(delay)) + 1)


def _middle(k: int) -> float:
    """The middle of sketch bin ``k`` (geometric, 0.5 for the first), to 3 digits."""
    return 0.5 if k == 0 else float(f"{2 ** ((k - 0.5) / 2):.3g}")


def quantile(sketch: list[int], q: float) -> float:
    """The upper edge of the bin of the ``q`` quantile of a sketch's delays (0 if empty).

    >>> sketch = [0] * SKETCH_BINS
    >>> sketch[_bin(0.5)], sketch[_bin(3.0)] = 98, 2
    >>> quantile(sketch, 0.5), quantile(sketch, 0.99)
    (1.0, 4.0)
    """
    total = sum(sketch)
    if not total:
        return 0.0
    seen = 0
    for k, count in enumerate(sketch):
        seen += count
        if seen >= q * total:
            return 2 ** (k / 2)
    return 2 ** ((SKETCH_BINS - 1) / 2)  # pragma: no cover (seen reaches the total)


def _spread(ones: int, n: int) -> list[float]:
    """``n`` values of which ``ones`` are 1.0, spread evenly (each 1 as late as it can be).

    >>> _spread(2, 5)
    [0.0, 0.0, 1.0, 0.0, 1.0]
    """
    return [float((i + 1) * ones // n - i * ones // n) for i in range(n)]
