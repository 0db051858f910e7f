"""A drift detector for categorical values: a G-test of recent shares against a reference.

A string feature (a country, a zip code, a device) has no mean for ADWIN to watch. The shares
of its values are a multinomial, and the test for "do these two samples come from the same
multinomial" is the G-test of independence (the likelihood-ratio form of Pearson's
chi-square). :class:`CategoryShift` learns a reference from the first ``reference`` values:
its ``top_k`` most frequent values are tracked, everything else (including values never seen
in the reference) is ``"other"``. It then compares the latest ``window`` values with the
reference every ``clock`` values and detects a drift when the p-value falls below
``p_value``.

Why not one ADWIN per value (``country=NL`` as a 0/1 stream)? On the conformance suite's
streams both are silent when stable, but a shift that moves several values a little each is
one strong signal to the G-test and K weak ones to K ADWINs (measured in
``tests/unit/test_detector_conformance.py``, which asserts the G-test is the faster one).

>>> import random
>>> rng = random.Random(3)
>>> detector = CategoryShift()
>>> stream = rng.choices(["NL", "DE", "FR"], weights=[5, 3, 2], k=3000)
>>> stream += rng.choices(["NL", "DE", "FR"], weights=[2, 3, 5], k=1000)
>>> for i, value in enumerate(stream):
...     detector.update(value)
...     if detector.drift_detected:
...         break
>>> i
3299
>>> [(share.value, round(share.before, 2), round(share.after, 2)) for share in detector.moved()]
[('NL', 0.51, 0.32), ('FR', 0.2, 0.35)]

The shares ``after`` are of the window, which still holds values from before the change.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from schemas.events import ValueShare

OTHER = "other"
"""The bucket of every value outside the reference's top K."""


class CategoryShift:
    """G-test drift detector for a stream of categorical values (river's detector interface).

    Parameters
    ----------
    reference
        Values learned as the reference before any test; after a drift a fresh detector
        learns the new regime as its reference.
    window
        The latest values compared with the reference.
    top_k
        Values tracked by name: the most frequent in the reference (ties by name). The others
        share the ``"other"`` bucket.
    clock
        Values between two tests.
    p_value
        A test below this p-value is a drift. Tests overlap (a window of 500 tested every 100
        values), so this is far stricter than one test's 0.05.
    """

    def __init__(
        self,
        reference: int = 1000,
        window: int = 500,
        top_k: int = 10,
        clock: int = 100,
        p_value: float = 1e-6,
    ) -> None:
        if min(reference, window, top_k, clock) < 1 or not 0.0 < p_value < 1.0:
            raise ValueError("reference, window, top_k and clock must be >= 1, 0 < p_value < 1")
        self.reference = reference
        self.window = window
        self.top_k = top_k
        self.clock = clock
        self.p_value = p_value
        self.drift_detected = False
        self._reference_counts: Counter[str] = Counter()
        self._tracked: frozenset[str] | None = None
        self._reference_buckets: Counter[str] = Counter()
        """The reference's counts by bucket (its top K values and ``"other"``), once frozen."""
        self._recent: deque[str] = deque(maxlen=window)
        self._recent_counts: Counter[str] = Counter()
        self._since_test = 0

    def update(self, x: str) -> None:
        """Learn ``x`` into the reference, or push it into the window and test on the clock."""
        self.drift_detected = self.update_many((x,)) == 0

    def update_many(self, values: Sequence[str], start: int = 0) -> int:
        """Take ``values[start:]`` in order until a test detects a drift: the index of the value
        it detected at (the values after it are not taken), or -1."""
        self.drift_detected = False
        index, end = start, len(values)
        while self._tracked is None and index < end:
            self._reference_counts[values[index]] += 1
            index += 1
            if self._reference_counts.total() == self.reference:
                self._freeze()
        tracked, recent, counts = self._tracked, self._recent, self._recent_counts
        window, clock = self.window, self.clock
        for index in range(index, end):  # noqa: B020 - continues from the reference's end
            value = values[index]
            bucket = value if value in tracked else OTHER  # type: ignore[operator]
            if len(recent) == window:
                counts[recent[0]] -= 1
            recent.append(bucket)
            counts[bucket] += 1
            self._since_test += 1
            if len(recent) == window and self._since_test >= clock:
                self._since_test = 0
                if self.test() < self.p_value:
                    self.drift_detected = True
                    return index
        return -1

    def state(self) -> dict[str, Any]:
        """The detector as plain values (:meth:`from_state` builds it again)."""
        return {
            "params": [self.reference, self.window, self.top_k, self.clock, self.p_value],
            "reference_counts": dict(self._reference_counts),
            "tracked": None if self._tracked is None else sorted(self._tracked),
            "reference_buckets": dict(self._reference_buckets),
            "recent": list(self._recent),
            "since_test": self._since_test,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CategoryShift:
        detector = cls(*state["params"])
        detector._reference_counts = Counter(state["reference_counts"])
        tracked = state["tracked"]
        detector._tracked = None if tracked is None else frozenset(tracked)
        detector._reference_buckets = Counter(state["reference_buckets"])
        detector._recent.extend(state["recent"])
        detector._recent_counts = Counter(state["recent"])
        detector._since_test = state["since_test"]
        return detector

    def test(self) -> float:
        """The p-value of the G-test of the window against the reference (1.0 while learning)."""
        if self._tracked is None or not self._recent:
            return 1.0
        reference, recent = self._reference_buckets, self._recent_counts
        buckets = [b for b in reference.keys() | recent.keys() if reference[b] + recent[b]]
        n_reference, n_recent = reference.total(), len(self._recent)
        total = n_reference + n_recent
        g = 0.0
        for bucket in buckets:
            pooled = (reference[bucket] + recent[bucket]) / total
            for observed, n in ((reference[bucket], n_reference), (recent[bucket], n_recent)):
                if observed:
                    g += 2.0 * observed * math.log(observed / (pooled * n))
        return chi_square_survival(g, len(buckets) - 1)

    def moved(self) -> list[ValueShare]:
        """The buckets whose share moved by at least a third of the largest move, most moved
        first: each with its share of the reference (``before``) and of the window
        (``after``)."""
        shares = self._shares()
        largest = abs(shares[0][2] - shares[0][1]) if shares else 0.0
        return [
            ValueShare(value=bucket, before=before, after=after)
            for bucket, before, after in shares
            if largest and abs(after - before) >= largest / 3
        ]

    def distance(self) -> float:
        """Total variation distance of the window from the reference: 0 same shares, 1 none
        shared (0.0 until the window is full: the shares of a few values are noise)."""
        if len(self._recent) < self.window:
            return 0.0
        return sum(abs(after - before) for _, before, after in self._shares()) / 2

    def _shares(self) -> list[tuple[str, float, float]]:
        reference = self._reference_buckets
        n_reference, n_recent = reference.total() or 1, len(self._recent) or 1
        shares = [
            (bucket, reference[bucket] / n_reference, self._recent_counts[bucket] / n_recent)
            for bucket in sorted(reference.keys() | self._recent_counts.keys())
        ]
        return sorted(shares, key=lambda share: -abs(share[2] - share[1]))

    def _freeze(self) -> None:
        ranked = sorted(self._reference_counts.items(), key=lambda item: (-item[1], item[0]))
        self._tracked = tracked = frozenset(value for value, _ in ranked[: self.top_k])
        for value, count in ranked:
            self._reference_buckets[value if value in tracked else OTHER] += count


def chi_square_survival(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with ``df`` degrees of freedom (1.0 for df < 1).

    The regularised upper incomplete gamma function Q(df/2, x/2), by its series below
    ``a + 1`` and its continued fraction above (Numerical Recipes, 6.2).

    >>> round(chi_square_survival(3.841, 1), 3), round(chi_square_survival(18.307, 10), 3)
    (0.05, 0.05)
    """
    if df < 1 or x <= 0.0:
        return 1.0
    a, z = df / 2.0, x / 2.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        while abs(term) > abs(total) * 1e-15:
            denominator += 1.0
            term *= z / denominator
            total += term
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = z + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    fraction = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < 1e-15:
            break
    return math.exp(log_prefix) * fraction
