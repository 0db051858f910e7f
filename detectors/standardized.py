"""Feed a drift detector z-scores instead of raw values, so its thresholds are scale-free.

Page-Hinkley's ``delta`` and ``threshold`` are in units of the signal: a threshold that suits
an error indicator (standard deviation 0.3) raises alarm after alarm on a feature measured in
dollars. Standardising each value by the running mean and standard deviation of everything
seen so far makes one parameter set fit every signal.
"""

from __future__ import annotations

import math
from typing import Any

from river import stats


class Standardized:
    """Wrap a river drift detector so it sees ``(x - mean) / std`` of the stream so far.

    Parameters
    ----------
    detector
        A river drift detector (anything with ``update`` and ``drift_detected``).
    warm_up
        Values used only to estimate mean and standard deviation before the detector sees
        the first z-score; a constant stream (zero deviation) feeds the detector zeros.

    Examples
    --------
    >>> import random
    >>> from river import drift
    >>> rng = random.Random(7)
    >>> detector = Standardized(drift.PageHinkley(delta=0.15, threshold=50, alpha=1.0))
    >>> stream = [rng.gauss(1000, 100) for _ in range(2000)]
    >>> stream += [rng.gauss(1150, 100) for _ in range(2000)]
    >>> for i, x in enumerate(stream):
    ...     detector.update(x)
    ...     if detector.drift_detected:
    ...         print(f"Change detected at index {i}")
    ...         break
    Change detected at index 2040
    """

    def __init__(self, detector: Any, warm_up: int = 100) -> None:
        self.detector = detector
        self.warm_up = warm_up
        self._var = stats.Var()

    @property
    def drift_detected(self) -> bool:
        """Whether the wrapped detector detected a drift at the last update."""
        return bool(self.detector.drift_detected)

    def update(self, x: float) -> None:
        """Update the running moments with ``x``, then the detector with its z-score."""
        self._var.update(x)
        if self._var.n <= self.warm_up:
            return
        std = math.sqrt(self._var.get())
        self.detector.update((x - self._var.mean.get()) / std if std > 0 else 0.0)
