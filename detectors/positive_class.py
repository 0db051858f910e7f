"""Rolling precision and recall of a classifier for one positive class.

Each joined classification outcome is one (predicted positive?, actually positive?) pair; the
rates are over the last ``size`` pairs. Labels are compared as text, as the class signals do,
so the positive label ``"1"`` matches the class ``1`` and the class ``"1"``. A pair may also
carry the *probability* that the request is actually positive (:meth:`push_expected`), which
turns the rates into estimates from predictions alone (:mod:`detectors.calibration`). It is
the bank's signal source ``source/positive_class`` (:mod:`detectors.sources`), which emits no
signal: it takes classification outcomes, and its summary figures are the realised
``precision`` and ``recall``.

>>> rates = PositiveClassRates("1", size=4)
>>> for predicted, label in [(1, 1), (1, 0), (0, 1), (1, 1), (0, 0)]:
...     rates.push(predicted, label)
>>> rates.precision, rates.recall  # last four: (1, 0) (0, 1) (1, 1) (0, 0)
(0.5, 0.5)
>>> empty = PositiveClassRates("1", size=4)
>>> empty.push(0, 0)
>>> empty.precision, empty.recall  # no positive predicted, none actual: undefined
(None, None)
>>> expected = PositiveClassRates("1", size=4)
>>> for predicted, positive in [(True, 0.9), (True, 0.7), (False, 0.2)]:
...     expected.push_expected(predicted, positive)
>>> round(expected.precision, 2), round(expected.recall, 2)  # 1.6 of 2, 1.6 of 1.8
(0.8, 0.89)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from detectors.join_buffer import OutcomeValue
from detectors.signals import Signal
from detectors.window import RecentWindow

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.join_buffer import JoinedOutcome
    from detectors.sources import Emit, Figure


class PositiveClassRates:
    """Precision and recall of the class ``positive_label`` over the last ``size`` outcomes.

    Parameters
    ----------
    positive_label
        The class that counts as positive, compared with ``str()`` of predictions and labels.
    size
        How many of the latest outcomes the rates cover.
    """

    name: ClassVar[str] = "source/positive_class"
    signals: ClassVar[tuple[Signal, ...]] = ()
    figures: ClassVar[Mapping[str, str | None]] = {
        "precision": "Precision of the positive class over recent outcomes.",
        "recall": "Recall of the positive class over recent outcomes.",
    }
    on_prediction: ClassVar[None] = None

    def __init__(self, positive_label: str, size: int) -> None:
        self.positive_label = positive_label
        self._true_positive = RecentWindow(size)
        self._predicted = RecentWindow(size)
        self._actual = RecentWindow(size)

    def is_positive(self, value: OutcomeValue) -> bool:
        """Whether a prediction or label is the positive class (compared as text)."""
        return str(value) == self.positive_label

    def push(self, prediction: OutcomeValue, label: OutcomeValue) -> None:
        """Add one outcome, dropping the oldest beyond ``size``."""
        self.push_expected(self.is_positive(prediction), float(self.is_positive(label)))

    def push_expected(self, predicted: bool, positive: float) -> None:
        """Add one prediction (positive or not) whose label is positive with probability
        ``positive`` (1.0 or 0.0 when the label is known)."""
        self._true_positive.push(positive if predicted else 0.0)
        self._predicted.push(float(predicted))
        self._actual.push(positive)

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> PositiveClassRates:
        """The bank's realised rates: its positive class, over its recent window."""
        return cls(config.positive_label, config.recent_window)

    def on_outcome(self, outcome: JoinedOutcome, emit: Emit) -> None:
        """Add a classification outcome (a regression has no positive class)."""
        if outcome.task == "classification":
            self.push(outcome.prediction, outcome.label)

    def summary(self) -> dict[str, Figure]:
        """The realised ``precision`` and ``recall``."""
        return {"precision": self.precision, "recall": self.recall}

    def state(self) -> dict[str, Any]:
        """The three windows as plain values (:meth:`from_state`)."""
        windows = (self._true_positive, self._predicted, self._actual)
        return {"positive_label": self.positive_label, "windows": [w.state() for w in windows]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PositiveClassRates:
        rates = cls(state["positive_label"], 1)
        true_positive, predicted, actual = (RecentWindow.from_state(w) for w in state["windows"])
        rates._true_positive, rates._predicted, rates._actual = true_positive, predicted, actual
        return rates

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
