"""The streams a model's detectors watch, and how events become their values.

Concept signals come from joined outcomes: ``error_rate`` (0/1 per classification) or
``abs_error`` (per regression). Data signals come from prediction events alone, so they can
fire before any label arrives:

- per tracked feature, ``feature:<name>`` (numbers) or ``category:<name>`` (strings: the
  value itself, for the G-test of :mod:`detectors.category`), and two data-quality
  indicators: ``missing:<name>`` (1 when the feature is null or absent) and
  ``invalid:<name>`` (1 for a value of the wrong type, a number outside the range of the
  feature's first ``quality_reference`` values, widened by ``RANGE_MARGIN`` of it on each
  side, or a category they never held);
- ``score``, ``prediction`` for numeric (regression) predictions and
  ``predicted_class:<label>``, a 0/1 indicator per predicted class;
- ``estimated_accuracy``, the probability that a prediction is right, from its score
  (:mod:`detectors.calibration`);
- ``volume`` (predictions per second, per interval: :mod:`detectors.volume`) and label health:
  ``label_coverage`` (:mod:`detectors.label_health`) and ``label_delay``, the seconds from a
  prediction to its label.

A feature is tracked from its first non-null value, which also fixes its type: a number makes
it numeric, a string categorical. Feature and class signals are capped in number: the first
ones seen are tracked, later ones ignored.

>>> from datetime import datetime, timezone
>>> from schemas.events import PredictionEvent
>>> signals = PredictionSignals(max_features=10, max_classes=10, quality_reference=1000)
>>> def event(**features):
...     return PredictionEvent(request_id="r", model_id="m", model_version="1",
...         timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
...         features=features, prediction="churn", score=0.8)
>>> for signal, value in signals.extract(event(age=41.0, country="NL")):
...     print(signal.name, value)
feature:age 41.0
missing:age 0.0
invalid:age 0.0
category:country NL
missing:country 0.0
invalid:country 0.0
score 0.8
predicted_class:churn 1.0
>>> [(signal.name, value) for signal, value in signals.extract(event(age="41"))][:4]
[('missing:age', 0.0), ('invalid:age', 1.0), ('missing:country', 1.0), ('invalid:country', 0.0)]
>>> signals.quality["age"]
FeatureQuality(missing=0, wrong_type=1, out_of_range=0, unseen_category=0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from detectors.join import JoinedOutcome
from schemas.events import PredictionEvent

SignalKind = Literal["concept", "data"]

CATEGORY_PREFIX = "category:"
"""The name prefix of the categorical signals, one per string feature."""
RANGE_MARGIN = 0.1
"""How far beyond its reference range, as a share of that range, a number may lie and still be
valid: the extremes of 1,000 values are not those of the feature (without a margin, 1 in 500
values of any continuous feature would be out of range)."""
MAX_SIGNAL_NAME = 160
"""The longest signal name a DriftAlert carries; longer class labels are not tracked."""


SignalValue = float | str
"""A number, or a category (the value of a string feature)."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A named stream of one model; ``binary`` signals only take the values 0.0 and 1.0,
    ``categorical`` ones are strings."""

    name: str
    kind: SignalKind
    binary: bool
    categorical: bool = False
    recent_window: int | None = None
    """Values kept for its estimate and change point, if not the bank's ``recent_window``."""


ERROR_RATE = Signal("error_rate", "concept", binary=True)
ABS_ERROR = Signal("abs_error", "concept", binary=False)
SCORE = Signal("score", "data", binary=False)
PREDICTION = Signal("prediction", "data", binary=False)
ESTIMATED_ACCURACY = Signal("estimated_accuracy", "data", binary=False)
VOLUME = Signal("volume", "data", binary=False, recent_window=30)
"""One value per interval: its estimate is the rate of the last 30 (5 minutes at 10 s)."""
LABEL_COVERAGE = Signal("label_coverage", "data", binary=True, recent_window=5000)
"""A value per prediction, given out a bucket at a time: its estimate and the change point of
an alert span the last 5,000 (50 buckets at 10 requests per second), as a small drop in
coverage takes ADWIN more than the default window's 5 buckets to see."""
LABEL_DELAY = Signal("label_delay", "data", binary=False)


def outcome_signal(outcome: JoinedOutcome) -> tuple[Signal, float]:
    """The concept signal of a joined outcome and its value."""
    signal = ERROR_RATE if outcome.task == "classification" else ABS_ERROR
    return signal, outcome.error


@dataclass(slots=True)
class FeatureQuality:
    """Counts of one feature's data-quality problems since it was first seen."""

    missing: int = 0
    """Predictions where it was null or absent."""
    wrong_type: int = 0
    """A string for a numeric feature, or a number for a categorical one."""
    out_of_range: int = 0
    """Numbers outside the range of the feature's reference values (with its margin)."""
    unseen_category: int = 0
    """Strings its reference values never held."""


class _TrackedFeature:
    """One feature's signals, its quality counts and its reference (range or categories)."""

    def __init__(self, name: str, categorical: bool, reference: int) -> None:
        self.categorical = categorical
        prefix = CATEGORY_PREFIX if categorical else "feature:"
        self.value = Signal(f"{prefix}{name}", "data", binary=False, categorical=categorical)
        self.missing = Signal(f"missing:{name}", "data", binary=True)
        self.invalid = Signal(f"invalid:{name}", "data", binary=True)
        self.quality = FeatureQuality()
        self._reference = reference
        self._seen = 0
        self._low, self._high = math.inf, -math.inf
        self._categories: set[str] = set()

    def extract(self, value: float | str | None) -> list[tuple[Signal, SignalValue]]:
        """This feature's signal values for one prediction's ``value``."""
        if value is None:
            self.quality.missing += 1
            return [(self.missing, 1.0), (self.invalid, 0.0)]
        if isinstance(value, str) != self.categorical:
            self.quality.wrong_type += 1
            return [(self.missing, 0.0), (self.invalid, 1.0)]
        return [
            (self.value, value),
            (self.missing, 0.0),
            (self.invalid, float(self._unusual(value))),
        ]

    def _unusual(self, value: float | str) -> bool:
        """Learn ``value`` into the reference, or tell whether the reference never saw its like."""
        if self._seen < self._reference:
            self._seen += 1
            if isinstance(value, str):
                self._categories.add(value)
            else:
                self._low, self._high = min(self._low, value), max(self._high, value)
                if self._seen == self._reference:
                    margin = RANGE_MARGIN * (self._high - self._low)
                    self._low, self._high = self._low - margin, self._high + margin
            return False
        if isinstance(value, str):
            unseen = value not in self._categories
            self.quality.unseen_category += unseen
            return unseen
        outside = not self._low <= value <= self._high
        self.quality.out_of_range += outside
        return outside


class PredictionSignals:
    """Turns prediction events into data-signal values, tracking capped sets of names.

    Parameters
    ----------
    max_features
        How many features are tracked (first seen with a non-null value, in name order within
        an event).
    max_classes
        How many predicted classes get a ``predicted_class:<label>`` indicator. A class's
        indicator starts with the first event that predicts it; labels are compared as
        strings (the class ``1`` and the class ``"1"`` share a signal).
    quality_reference
        How many values of a feature form its reference for ``invalid:<name>``: its range, or
        its set of categories.
    """

    def __init__(self, max_features: int, max_classes: int, quality_reference: int) -> None:
        self.max_features = max_features
        self.max_classes = max_classes
        self.quality_reference = quality_reference
        self._features: dict[str, _TrackedFeature] = {}
        self._classes: dict[str, Signal] = {}

    @property
    def quality(self) -> dict[str, FeatureQuality]:
        """Each tracked feature's quality counts (live objects, by feature name)."""
        return {name: feature.quality for name, feature in self._features.items()}

    def extract(self, event: PredictionEvent) -> list[tuple[Signal, SignalValue]]:
        """The data-signal values of one prediction event, in a deterministic order."""
        features = event.features
        for name in sorted(features):
            value = features[name]
            if (
                value is not None
                and name not in self._features
                and len(self._features) < self.max_features
            ):
                self._features[name] = _TrackedFeature(
                    name, isinstance(value, str), self.quality_reference
                )
        values: list[tuple[Signal, SignalValue]] = []
        for name, feature in self._features.items():
            values.extend(feature.extract(features.get(name)))
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

    def _track_class(self, label: str) -> None:
        name = f"predicted_class:{label}"
        if (
            label not in self._classes
            and len(self._classes) < self.max_classes
            and len(name) <= MAX_SIGNAL_NAME
        ):
            self._classes[label] = Signal(name, "data", binary=True)
