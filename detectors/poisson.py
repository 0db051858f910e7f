"""A CUSUM for the rate of a count stream: a surge or a drop of traffic within an interval or two.

The ``volume`` signal is one rate per interval (predictions per second). A Poisson count of
mean ``m`` has variance ``m``, so ``m`` can be read off the values themselves, whatever the
interval: ``mean**2 / variance`` of the rates is the count per interval (the *effective
count*), and ``value * mean / variance`` is a value as a count. Traffic that comes in bursts is
over-dispersed: its effective count is smaller than its raw count, and the test is as cautious
as that count allows. :class:`RateShift` learns the mean and the variance of the values (a
plain mean over its first values, then an exponentially weighted one, winsorised at 3 standard
deviations, so that a slow swing, a diurnal cycle, moves its baseline along; only while both
sums below are at zero, so that a shift is not learnt while it is being tested), and runs two
Poisson CUSUMs of the log-likelihood ratio of the value as a count:

- up: rate ``ratio`` times the baseline against the baseline, ``c ln(ratio) - m (ratio - 1)``;
- down: rate ``1/ratio`` times the baseline, ``-c ln(ratio) + m (1 - 1/ratio)``.

Either sum reaching ``threshold`` is a drift. With ``m`` effective counts per interval, a 5x
surge adds ``2.47 m`` to the up sum per interval and a drop to zero ``m / 2`` to the down sum:
at the default threshold 16, both are seen within 2 intervals once ``m`` is 16 or more, which
:class:`~detectors.volume.TrafficVolume` sizes its interval for (32 counts, 25 once the
variance is inflated for its uncertainty). At threshold 12 a Poisson count of 20 fired 23
times in 100,000 stable intervals, at 16 twice; a count of 40, once and never. A stable stream
drifts both sums down by about ``0.31 m`` per interval, and a rate within 0.72-1.44 of the
baseline never raises them on average.

Why not ADWIN: ADWIN bounds the difference of two window means by Hoeffding's inequality on
the range of the values seen, not their variance; on 20 intervals of 1,000 +- 32 predictions
it sees nothing of a 5x surge (it needs about 30 intervals of history), and it keeps
cutting at slow swings. The CUSUM uses the count's own variance and needs ``grace_period``
values of history.

>>> import random
>>> rng = random.Random(1)
>>> detector = RateShift()
>>> rates = [rng.gauss(100, 3.2) for _ in range(20)] + [500.0, 500.0]
>>> for i, rate in enumerate(rates):
...     detector.update(rate)
...     if detector.drift_detected:
...         print(i)
...         break
20
"""

from __future__ import annotations

import math

MAX_EFFECTIVE_COUNT = 1e9
"""The effective count of a stream without variance (a constant rate)."""


class RateShift:
    """Two-sided Poisson CUSUM on a rate, against its learned baseline (see the module).

    Parameters
    ----------
    ratio
        The change of rate each CUSUM is tuned for: up to ``ratio`` times, down to
        ``1/ratio`` times the baseline.
    threshold
        The log-likelihood ratio at which a sum is a drift.
    grace_period
        Values learnt before the first test.
    forget
        The weight of a new value in the baseline once ``1/forget`` values have been seen.
    """

    def __init__(
        self,
        ratio: float = 2.0,
        threshold: float = 16.0,
        grace_period: int = 10,
        forget: float = 0.02,
    ) -> None:
        if ratio <= 1 or threshold <= 0 or grace_period < 2 or not 0 < forget < 1:
            raise ValueError("need ratio > 1, threshold > 0, grace_period >= 2, 0 < forget < 1")
        self.ratio = ratio
        self.threshold = threshold
        self.grace_period = grace_period
        self.forget = forget
        self.n = 0
        self.mean = 0.0
        self.var = 0.0
        self.up = 0.0
        self.down = 0.0
        self.drift_detected = False

    @property
    def effective_count(self) -> float:
        """``mean**2 / variance``, the variance inflated while few values are known (0 before
        any traffic)."""
        if self.mean <= 0:
            return 0.0
        var = self.var * (1 + 3 / math.sqrt(min(self.n, 2 / self.forget)))
        return MAX_EFFECTIVE_COUNT if var <= 0 else min(self.mean**2 / var, MAX_EFFECTIVE_COUNT)

    def update(self, x: float) -> None:
        """Test ``x`` against the baseline, then learn it."""
        self.drift_detected = False
        if self.n >= self.grace_period and self.mean > 0:
            m = self.effective_count
            count = x * m / self.mean
            log_ratio = math.log(self.ratio)
            self.up = max(0.0, self.up + count * log_ratio - m * (self.ratio - 1))
            self.down = max(0.0, self.down - count * log_ratio + m * (1 - 1 / self.ratio))
            if self.up >= self.threshold or self.down >= self.threshold:
                self.drift_detected = True
            if self.up or self.down:  # out of control: the baseline does not follow
                return
        self._learn(x)

    def _learn(self, x: float) -> None:
        self.n += 1
        weight = max(1 / self.n, self.forget)
        if self.n > self.grace_period and self.var > 0:
            sd = math.sqrt(self.var)
            x = min(max(x, self.mean - 3 * sd), self.mean + 3 * sd)
        deviation = x - self.mean
        self.mean += weight * deviation
        self.var = (1 - weight) * (self.var + weight * deviation * deviation)
