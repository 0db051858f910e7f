"""The streams of numbers a model's detectors watch, and how events become their values.

Concept signals come from joined outcomes: ``error_rate`` (0/1 per classification) or
``abs_error`` (per regression). Data signals come from prediction events alone, so they can
fire before any label arrives: ``feature:<name>`` per numeric feature, ``score``,
``prediction`` for numeric (regression) predictions and ``predicted_class:<label>``, a 0/1
indicator per predicted class. Feature and class signals are capped in number: the first
ones seen are tracked, later ones ignored. ``estimated_accuracy`` is a data signal too: the
probability that a prediction is right, from its score (:mod:`detectors.calibration`).

>>> from datetime import datetime, timezone
>>> from schemas.events import PredictionEvent
>>> signals = PredictionSignals(max_features=10, max_classes=10)
>>> event = PredictionEvent(request_id="r", model_id="m", model_version="1",
...     timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
...     features={"age": 41.0, "country": "NL"}, prediction="churn", score=0.8)
>>> [(signal.name, value) for signal, value in signals.extract(event)]
[('feature:age', 41.0), ('score', 0.8), ('predicted_class:churn', 1.0)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from detectors.join import JoinedOutcome
from schemas.events import PredictionEvent

SignalKind = Literal["concept", "data"]

MAX_SIGNAL_NAME = 160
"""The longest signal name a DriftAlert carries; longer class labels are not tracked."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A named stream of one model; ``binary`` signals only take the values 0.0 and 1.0."""

    name: str
    kind: SignalKind
    binary: bool


ERROR_RATE = Signal("error_rate", "concept", binary=True)
ABS_ERROR = Signal("abs_error", "concept", binary=False)
SCORE = Signal("score", "data", binary=False)
PREDICTION = Signal("prediction", "data", binary=False)
ESTIMATED_ACCURACY = Signal("estimated_accuracy", "data", binary=False)


def outcome_signal(outcome: JoinedOutcome) -> tuple[Signal, float]:
    """The concept signal of a joined outcome and its value."""
    signal = ERROR_RATE if outcome.task == "classification" else ABS_ERROR
    return signal, outcome.error


class PredictionSignals:
    """Turns prediction events into data-signal values, tracking capped sets of names.

    Parameters
    ----------
    max_features
        How many numeric features get a ``feature:<name>`` signal (first seen, in name order
        within an event); strings and nulls are never signals.
    max_classes
        How many predicted classes get a ``predicted_class:<label>`` indicator. A class's
        indicator starts with the first event that predicts it; labels are compared as
        strings (the class ``1`` and the class ``"1"`` share a signal).
    """

    def __init__(self, max_features: int, max_classes: int) -> None:
        self.max_features = max_features
        self.max_classes = max_classes
        self._features: dict[str, Signal] = {}
        self._classes: dict[str, Signal] = {}

    def extract(self, event: PredictionEvent) -> list[tuple[Signal, float]]:
        """The data-signal values of one prediction event, in a deterministic order."""
        values: list[tuple[Signal, float]] = []
        for name in sorted(event.features):
            value = event.features[name]
            if isinstance(value, float) and (signal := self._feature(name)) is not None:
                values.append((signal, value))
        if event.score is not None:
            values.append((SCORE, event.score))
        if isinstance(event.prediction, float):
            values.append((PREDICTION, event.prediction))
            return values
        predicted = str(event.prediction)
        self._track_class(predicted)
        values.extend(
            (signal, 1.0 if label == predicted else 0.0) for label, signal in self._classes.items()
        )
        return values

    def _feature(self, name: str) -> Signal | None:
        signal = self._features.get(name)
        if signal is None and len(self._features) < self.max_features:
            signal = self._features[name] = Signal(f"feature:{name}", "data", binary=False)
        return signal

    def _track_class(self, label: str) -> None:
        name = f"predicted_class:{label}"
        if (
            label not in self._classes
            and len(self._classes) < self.max_classes
            and len(name) <= MAX_SIGNAL_NAME
        ):
            self._classes[label] = Signal(name, "data", binary=True)
