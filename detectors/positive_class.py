"""Rolling precision and recall of a classifier for one positive class.

Each joined classification outcome is one (predicted positive?, actually positive?) pair; the
rates are over the last ``size`` pairs. Labels are compared as text, as the class signals do,
so the positive label ``"1"`` matches the class ``1`` and the class ``"1"``.

>>> rates = PositiveClassRates("1", size=4)
>>> for predicted, label in [(1, 1), (1, 0), (0, 1), (1, 1), (0, 0)]:
...     rates.push(predicted, label)
>>> rates.precision, rates.recall  # last four: (1, 0) (0, 1) (1, 1) (0, 0)
(0.5, 0.5)
>>> empty = PositiveClassRates("1", size=4)
>>> empty.push(0, 0)
>>> empty.precision, empty.recall  # no positive predicted, none actual: undefined
(None, None)
"""

from __future__ import annotations

from detectors.join import OutcomeValue
from detectors.window import RecentWindow


class PositiveClassRates:
    """Precision and recall of the class ``positive_label`` over the last ``size`` outcomes.

    Parameters
    ----------
    positive_label
        The class that counts as positive, compared with ``str()`` of predictions and labels.
    size
        How many of the latest outcomes the rates cover.
    """

    def __init__(self, positive_label: str, size: int) -> None:
        self.positive_label = positive_label
        self._true_positive = RecentWindow(size)
        self._predicted = RecentWindow(size)
        self._actual = RecentWindow(size)

    def push(self, prediction: OutcomeValue, label: OutcomeValue) -> None:
        """Add one outcome, dropping the oldest beyond ``size``."""
        predicted = str(prediction) == self.positive_label
        actual = str(label) == self.positive_label
        self._true_positive.push(float(predicted and actual))
        self._predicted.push(float(predicted))
        self._actual.push(float(actual))

    @property
    def precision(self) -> float | None:
        """Share of the predicted positives that are positive (None without any)."""
        return _ratio(self._true_positive.mean, self._predicted.mean)

    @property
    def recall(self) -> float | None:
        """Share of the actual positives predicted positive (None without any)."""
        return _ratio(self._true_positive.mean, self._actual.mean)


def _ratio(part: float, whole: float) -> float | None:
    """``part / whole`` of two means over the same window (their sums' ratio)."""
    return part / whole if whole > 0 else None
