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

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

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

    @property
    def total(self) -> int:
        """All its problems: a change of any count changes it (the counts only grow)."""
        return self.missing + self.wrong_type + self.out_of_range + self.unseen_category

    def counts(self) -> tuple[int, int, int, int]:
        """The counts in field order (``FeatureQuality(*counts)`` builds it again): what
        ``dataclasses.astuple`` gives, without its deep copies (a state is taken often)."""
        return self.missing, self.wrong_type, self.out_of_range, self.unseen_category


@dataclass(slots=True)
class Column:
    """A signal's values in a batch: ``at[i]`` is the index, in the batch, of the event that
    gave ``values[i]`` (an event may give several, or none). Read only (columns may share
    their lists); not ``frozen``, whose ``__init__`` costs several times as much, dozens of
    columns a model and batch."""

    signal: Signal
    values: list[SignalValue]
    at: Sequence[int]


def _binary(n: int, ones: Iterable[int]) -> list[SignalValue]:
    values: list[SignalValue] = [0.0] * n
    for index in ones:
        values[index] = 1.0
    return values


_NO_CATEGORIES: frozenset[str] = frozenset()
"""The categories of every numeric feature (a frozenset, shared: only a categorical feature
learns categories, into a set of its own)."""


class _TrackedFeature:
    """One feature's signals, its quality counts and its reference (range or categories)."""

    __slots__ = (
        "_categories",
        "_high",
        "_low",
        "_reference",
        "_seen",
        "categorical",
        "invalid",
        "missing",
        "name",
        "quality",
        "rank",
        "value",
    )

    def __init__(self, name: str, categorical: bool, reference: int, rank: int = 0) -> None:
        self.name = name
        self.rank = rank
        """Its place among the model's tracked features (they are tracked in this order)."""
        self.categorical = categorical
        prefix = CATEGORY_PREFIX if categorical else "feature:"
        self.value = Signal(f"{prefix}{name}", "data", binary=False, categorical=categorical)
        self.missing = Signal(f"missing:{name}", "data", binary=True)
        self.invalid = Signal(f"invalid:{name}", "data", binary=True)
        self.quality = FeatureQuality()
        self._reference = reference
        self._seen = 0
        self._low, self._high = math.inf, -math.inf
        self._categories: set[str] | frozenset[str] = set() if categorical else _NO_CATEGORIES
        """The reference's categories (a numeric feature has none, and no set of its own)."""

    def columns(self, values: list[float | str | None], start: int) -> tuple[list[Column], bool]:
        """This feature's three columns for the events ``start, start + 1, ...`` whose values
        are ``values``: the value itself where it is usable, ``missing:`` and ``invalid:``;
        and whether its piece changed (its reference or its quality counts, :meth:`saved`)."""
        n = len(values)
        at = range(start, start + n)
        learning = self._seen < self._reference
        before = self.saved() if learning else None
        usable, missing, wrong = self._sort(values)
        used: Sequence[int] = at
        good_values = values
        if usable is not None:  # not the usual: some values missing or of the wrong type
            good_values, used = [values[i] for i in usable], [start + i for i in usable]
            self.quality.missing += len(missing)
            self.quality.wrong_type += len(wrong)
        unusual = self._unusual(good_values)
        zeros: list[SignalValue] = [0.0] * n  # one list for the columns without a 1 (read only)
        invalid = zeros
        if wrong or unusual:
            invalid = _binary(n, itertools.chain(wrong, (used[i] - start for i in unusual)))
        columns = [
            Column(self.value, good_values, used),  # type: ignore[arg-type]
            Column(self.missing, _binary(n, missing) if missing else zeros, at),
            Column(self.invalid, invalid, at),
        ]
        changed = bool(missing or wrong or unusual) or (learning and self.saved() != before)
        return columns, changed

    def _sort(
        self, values: list[float | str | None]
    ) -> tuple[list[int] | None, list[int], list[int]]:
        """Where the usable values are (None: all of them), where they are missing and where
        of the wrong type."""
        if set(map(type, values)) == {str if self.categorical else float}:
            return None, [], []
        usable: list[int] = []
        missing: list[int] = []
        wrong: list[int] = []
        for index, value in enumerate(values):
            if value is None:
                missing.append(index)
            elif isinstance(value, str) != self.categorical:
                wrong.append(index)
            else:
                usable.append(index)
        return usable, missing, wrong

    def _unusual(self, values: Sequence[float | str | None]) -> list[int]:
        """Learn the first values into the reference (until it is full); the indices of the
        values after it that it never saw the like of."""
        learned = min(len(values), self._reference - self._seen)
        if learned > 0:
            self._seen += learned
            if self.categorical:
                categories = cast("set[str]", self._categories)  # its own, not the shared one
                categories.update(cast("Sequence[str]", values[:learned]))
            else:
                part = cast("Sequence[float]", values[:learned])
                self._low = min(self._low, min(part))
                self._high = max(self._high, max(part))
                if self._seen == self._reference:
                    margin = RANGE_MARGIN * (self._high - self._low)
                    self._low, self._high = self._low - margin, self._high + margin
        rest = values[max(learned, 0) :]
        if not rest:
            return []
        skip = max(learned, 0)
        if self.categorical:
            known = self._categories
            unseen = [skip + i for i, value in enumerate(rest) if value not in known]
            self.quality.unseen_category += len(unseen)
            return unseen
        low, high = self._low, self._high
        numbers = cast("Sequence[float]", rest)
        outside = [skip + i for i, value in enumerate(numbers) if value < low or value > high]
        self.quality.out_of_range += len(outside)
        return outside

    def saved(self) -> tuple[float, float, int, int]:
        """What changes its piece: its range, its number of categories, its problems. Not its
        count of reference values, which its value signal counts too (:meth:`resume`): while the
        reference fills, a value inside the range changes nothing to save."""
        return self._low, self._high, len(self._categories), self.quality.total

    def resume(self, usable: int) -> None:
        """Go on after a restore, its value signal having counted ``usable`` values: the
        reference learned the first of them (the ``seen`` its piece holds may be older)."""
        self._seen = min(self._reference, usable)

    def state(self) -> dict[str, Any]:
        """The reference and quality counts as plain values (:meth:`from_state`)."""
        return {
            "name": self.name,
            "rank": self.rank,
            "categorical": self.categorical,
            "reference": self._reference,
            "seen": self._seen,
            "range": (self._low, self._high),
            "categories": sorted(self._categories),
            "quality": self.quality.counts(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _TrackedFeature:
        feature = cls(state["name"], state["categorical"], state["reference"], state["rank"])
        feature._seen = state["seen"]
        feature._low, feature._high = state["range"]
        if feature.categorical:
            feature._categories = set(state["categories"])
        feature.quality = FeatureQuality(*state["quality"])
        return feature


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
        self.changed: set[str] = set()
        """Features whose reference or quality counts changed since the caller last cleared it."""

    @property
    def quality(self) -> dict[str, FeatureQuality]:
        """Each tracked feature's quality counts (live objects, by feature name)."""
        return {name: feature.quality for name, feature in self._features.items()}

    def extract(self, event: PredictionEvent) -> list[tuple[Signal, SignalValue]]:
        """The data-signal values of one prediction event, in a deterministic order."""
        return [
            (column.signal, value) for column in self.columns([event]) for value in column.values
        ]

    def columns(self, events: Sequence[PredictionEvent]) -> list[Column]:
        """The data-signal columns of a batch of prediction events, in the order one event's
        values come in: each tracked feature's three, ``score``, then ``prediction`` or the
        predicted classes."""
        starts = self._track_features(events)
        maps = [event.features for event in events]
        columns: list[Column] = []
        for name, feature in self._features.items():
            start = starts.get(name, 0)
            feature_columns, changed = feature.columns(
                [m.get(name) for m in (maps[start:] if start else maps)], start
            )
            columns += feature_columns
            if changed:
                self.changed.add(name)
        scored = [i for i, event in enumerate(events) if event.score is not None]
        columns.append(Column(SCORE, [events[i].score for i in scored], scored))  # type: ignore[misc]
        numeric: list[int] = []
        predicted: list[str] = []
        classified: list[int] = []
        class_starts: dict[str, int] = {}
        for index, event in enumerate(events):
            if isinstance(event.prediction, float):
                numeric.append(index)
                continue
            label = str(event.prediction)
            if self._track_class(label):
                class_starts[label] = len(predicted)
            predicted.append(label)
            classified.append(index)
        columns.append(Column(PREDICTION, [events[i].prediction for i in numeric], numeric))
        for label, signal in self._classes.items():
            start = class_starts.get(label, 0)
            indicator: list[SignalValue] = [1.0 if p == label else 0.0 for p in predicted[start:]]
            columns.append(Column(signal, indicator, classified[start:]))
        return columns

    def _track_features(self, events: Sequence[PredictionEvent]) -> dict[str, int]:
        """Track the features first seen in ``events``; the index each new one starts at."""
        starts: dict[str, int] = {}
        features = self._features
        for index, event in enumerate(events):
            if len(features) >= self.max_features:
                break
            if event.features.keys() <= features.keys():
                continue
            for name in sorted(event.features):
                value = event.features[name]
                if value is not None and name not in features and len(features) < self.max_features:
                    features[name] = _TrackedFeature(
                        name, isinstance(value, str), self.quality_reference, len(features)
                    )
                    starts[name] = index
                    self.changed.add(name)
        return starts

    def _track_class(self, label: str) -> bool:
        """Track ``label``'s indicator if it is new and there is room; whether it was."""
        name = f"predicted_class:{label}"
        if (
            label not in self._classes
            and len(self._classes) < self.max_classes
            and len(name) <= MAX_SIGNAL_NAME
        ):
            self._classes[label] = Signal(name, "data", binary=True)
            return True
        return False

    def feature_state(self, name: str) -> dict[str, Any]:
        """The reference and quality counts of a tracked feature."""
        return self._features[name].state()

    def state(self) -> dict[str, Any]:
        """The tracked classes (each feature has its own state: :meth:`feature_state`)."""
        return {"classes": list(self._classes)}

    def resume_references(self, counted: Callable[[Signal], int]) -> None:
        """After :meth:`restore`: each feature's reference goes on from the count of its value
        signal (``counted``), not from the older count its piece may hold."""
        for feature in self._features.values():
            feature.resume(counted(feature.value))

    def restore(self, state: dict[str, Any], features: Iterable[dict[str, Any]]) -> None:
        """Go on from :meth:`state` and every tracked feature's :meth:`feature_state`."""
        tracked = sorted((_TrackedFeature.from_state(f) for f in features), key=lambda f: f.rank)
        self._features = {feature.name: feature for feature in tracked}
        self._classes = {}
        for label in state["classes"]:
            self._track_class(label)
