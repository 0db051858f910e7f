"""A classifier's accuracy estimated from its scores, before (or without) labels.

This is confidence-based performance estimation (CBPE, as NannyML does in batch), streaming.
:class:`ScoreCalibration` learns from the first ``outcomes`` joined outcomes that carry a
``score`` how often a prediction with that score is right, and how often its request is
actually of the positive class, separately for predictions of the positive class and of the
others. Then it freezes. :class:`PerformanceEstimate` turns every later prediction into the
probability that it is right (the value of the ``estimated_accuracy`` signal, whose recent
mean is the estimated accuracy) and into expected true and false positives (estimated
precision and recall of the positive class).

**Histogram binning**, not isotonic regression: each side's reference outcomes are sorted by
score and cut into bins of at least ``min_bin`` outcomes (equal scores stay in one bin), each
bin keeping its share of correct and of positive outcomes. It assumes nothing about what the
score means (the positive class's probability, the predicted class's confidence, a margin),
so correctness need not rise with it, and it suits tree models, whose scores take a few
values. It does not extrapolate: a score beyond the reference's scores of its side gets the
rate of the nearest bin, so the estimate sees scores move only within the range the reference
covered.

**Frozen**, not slowly updated: the estimate is only worth having if it does not need labels,
and it rests on P(correct | score) staying what it was in the reference. A calibration that
kept learning would absorb a concept change into the estimate, turning it into a late, smoothed
copy of the realised accuracy that the ``error_rate`` detectors already watch, and it could
move with no change in the inputs. Frozen, the estimate moves only when the scores move: it
falls when inputs move toward the decision boundary, labelled or not. It cannot see a pure
concept change, which leaves the scores as they were. The calibration belongs to the model
version of its reference; a new version keeps it (see docs/architecture.md).

:class:`PerformanceEstimate` is the bank's signal source ``source/estimate``
(:mod:`detectors.sources`): it learns from outcomes, emits ``estimated_accuracy`` per
prediction, and its summary figures are ``estimated_precision`` and ``estimated_recall``.

>>> import random
>>> rng = random.Random(3)
>>> def request(near_boundary):
...     score = rng.uniform(0.3, 0.7) if near_boundary else rng.choice([0.05, 0.95])
...     return score, rng.random() < score  # a calibrated model: P(y = 1) = score
>>> calibration = ScoreCalibration(outcomes=2000)
>>> for _ in range(2000):  # the reference: one request in five near the boundary
...     score, label = request(near_boundary=rng.random() < 0.2)
...     calibration.learn(score, score > 0.5, correct=(score > 0.5) == label, positive=label)
>>> def estimated_accuracy(scores):
...     return sum(calibration.rates(s, s > 0.5).correct for s in scores) / len(scores)
>>> far = [request(near_boundary=False)[0] for _ in range(1000)]
>>> near = [request(near_boundary=True)[0] for _ in range(1000)]
>>> calibration.frozen, round(estimated_accuracy(far), 2), round(estimated_accuracy(near), 2)
(True, 0.95, 0.62)

(The true accuracies are 0.95 and 0.6.)
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from detectors.join_buffer import JoinedOutcome
from detectors.positive_class import PositiveClassRates
from detectors.signals import ESTIMATED_ACCURACY, Signal
from schemas.events import PredictionEvent

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.sources import Emit, Figure

MIN_BIN = 50
"""Reference outcomes per bin, at least: a bin's rates then have a standard error of at most
0.07, and the estimate, a mean over many predictions and bins, much less."""


@dataclass(frozen=True, slots=True)
class ExpectedOutcome:
    """What the reference says of a prediction: the probability that it is right, and that
    its request is of the positive class."""

    correct: float
    positive: float


@dataclass(frozen=True, slots=True)
class _Bins:
    """One side's calibration: bin ``i`` holds the scores up to ``edges[i]``."""

    edges: list[float]
    outcomes: list[ExpectedOutcome]

    def rates(self, score: float) -> ExpectedOutcome:
        return self.outcomes[min(bisect_left(self.edges, score), len(self.edges) - 1)]


Reference = tuple[float, bool, bool]
"""One reference outcome of a side: (score, correct, positive)."""


def _fit(reference: list[Reference], min_bin: int) -> _Bins:
    """Equal-frequency bins of at least ``min_bin`` outcomes (fewer if there are fewer), cut
    only between different scores; a short last bin joins the one before it."""
    ordered = sorted(reference)
    cuts: list[int] = []
    start = 0
    for end in range(1, len(ordered) + 1):
        between_scores = end == len(ordered) or ordered[end][0] != ordered[end - 1][0]
        if end - start >= min_bin and between_scores:
            cuts.append(end)
            start = end
    if not cuts or cuts[-1] != len(ordered):
        cuts = [*cuts[:-1], len(ordered)]
    edges, outcomes, start = [], [], 0
    for end in cuts:
        chunk = ordered[start:end]
        edges.append(chunk[-1][0])
        outcomes.append(
            ExpectedOutcome(
                correct=sum(correct for _, correct, _ in chunk) / len(chunk),
                positive=sum(positive for _, _, positive in chunk) / len(chunk),
            )
        )
        start = end
    return _Bins(edges, outcomes)


class ScoreCalibration:
    """Score to correctness and to positive class, by histogram binning, learned once.

    Parameters
    ----------
    outcomes
        Reference outcomes (with a score) to learn from; then the calibration is frozen
        (0: never calibrated).
    min_bin
        Reference outcomes per bin, at least.
    """

    def __init__(self, outcomes: int, min_bin: int = MIN_BIN) -> None:
        if outcomes < 0 or min_bin < 1:
            raise ValueError("outcomes must be >= 0 and min_bin >= 1")
        self.outcomes = outcomes
        self.min_bin = min_bin
        self._scores = array("d")  # the reference outcomes: their scores,
        self._flags = bytearray()  # and predicted positive, correct, positive (bits 2, 1, 0)
        self._sides: dict[bool, _Bins] | None = None

    @property
    def frozen(self) -> bool:
        """Whether the calibration has learned from all its reference outcomes."""
        return self._sides is not None

    def learn(self, score: float, predicted_positive: bool, correct: bool, positive: bool) -> None:
        """Add one reference outcome (ignored once frozen); the last one freezes it."""
        if self._sides is not None or self.outcomes == 0:
            return
        self._scores.append(score)
        self._flags.append(predicted_positive << 2 | correct << 1 | positive)
        if len(self._scores) == self.outcomes:
            by_side: dict[bool, list[Reference]] = {}
            for side, outcome in self._reference():
                by_side.setdefault(side, []).append(outcome)
            self._sides = {side: _fit(outcomes, self.min_bin) for side, outcomes in by_side.items()}
            self._scores, self._flags = array("d"), bytearray()

    def _reference(self) -> list[tuple[bool, Reference]]:
        """The reference outcomes so far, each with its side (predicted positive or not)."""
        return [
            (bool(flags & 4), (score, bool(flags & 2), bool(flags & 1)))
            for score, flags in zip(self._scores, self._flags, strict=True)
        ]

    def rates(self, score: float, predicted_positive: bool) -> ExpectedOutcome | None:
        """The reference rates at ``score`` for a prediction of that side; None before the
        calibration is frozen or when no reference outcome was of that side."""
        if self._sides is None or (bins := self._sides.get(predicted_positive)) is None:
            return None
        return bins.rates(score)

    def state(self) -> dict[str, Any]:
        """The reference or the frozen bins as plain values (:meth:`from_state`)."""
        sides = None
        if self._sides is not None:
            sides = [
                (side, bins.edges, [(o.correct, o.positive) for o in bins.outcomes])
                for side, bins in self._sides.items()
            ]
        return {
            "outcomes": self.outcomes,
            "min_bin": self.min_bin,
            "reference": [(side, *outcome) for side, outcome in self._reference()],
            "sides": sides,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ScoreCalibration:
        calibration = cls(state["outcomes"], state["min_bin"])
        for side, score, correct, positive in state["reference"]:
            calibration._scores.append(score)
            calibration._flags.append(side << 2 | correct << 1 | positive)
        if state["sides"] is not None:
            calibration._sides = {
                side: _Bins(edges, [ExpectedOutcome(c, p) for c, p in outcomes])
                for side, edges, outcomes in state["sides"]
            }
        return calibration


class PerformanceEstimate:
    """The estimated quality of one model's recent predictions, labelled or not.

    Parameters
    ----------
    positive_label
        The class whose precision and recall are estimated (compared as text).
    calibration_outcomes
        Joined outcomes with a score that calibrate the estimate (:class:`ScoreCalibration`).
    recent_window
        Predictions the estimated precision and recall cover.
    """

    name: ClassVar[str] = "source/estimate"
    signals: ClassVar[tuple[Signal, ...]] = (ESTIMATED_ACCURACY,)
    figures: ClassVar[Mapping[str, str | None]] = {
        "estimated_precision": "Precision of the positive class estimated from the scores of "
        "recent predictions.",
        "estimated_recall": "Recall of the positive class estimated from the scores of recent "
        "predictions.",
    }

    def __init__(self, positive_label: str, calibration_outcomes: int, recent_window: int) -> None:
        self.calibration = ScoreCalibration(calibration_outcomes)
        self._expected = PositiveClassRates(positive_label, recent_window)

    def learn(self, outcome: JoinedOutcome) -> None:
        """Calibrate on a classification outcome with a score (until frozen)."""
        if outcome.task == "classification" and outcome.score is not None:
            is_positive = self._expected.is_positive
            self.calibration.learn(
                outcome.score,
                is_positive(outcome.prediction),
                correct=outcome.error == 0.0,
                positive=is_positive(outcome.label),
            )

    def expected_correct(self, event: PredictionEvent) -> float | None:
        """The probability that ``event``'s prediction is right (:meth:`correct_of`), counted
        into the estimated precision and recall."""
        if (expected := self._expected_of(event)) is None:
            return None
        predicted = self._expected.is_positive(event.prediction)
        self._expected.push_expected(predicted, expected.positive)
        return expected.correct

    def correct_of(self, event: PredictionEvent) -> float | None:
        """The probability that ``event``'s prediction is right, counting nothing; None for a
        prediction without score, a regression, or before the calibration is frozen."""
        expected = self._expected_of(event)
        return None if expected is None else expected.correct

    def _expected_of(self, event: PredictionEvent) -> ExpectedOutcome | None:
        if event.score is None or isinstance(event.prediction, float):
            return None
        return self.calibration.rates(event.score, self._expected.is_positive(event.prediction))

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> PerformanceEstimate:
        """The bank's estimate: its positive class, calibration outcomes and recent window."""
        return cls(config.positive_label, config.calibration_outcomes, config.recent_window)

    def on_prediction(self, event: PredictionEvent, emit: Emit) -> None:
        """Emit the probability that ``event``'s prediction is right (``estimated_accuracy``),
        once the calibration is frozen (:meth:`expected_correct`)."""
        if (correct := self.expected_correct(event)) is not None:
            emit(ESTIMATED_ACCURACY, correct)

    def on_outcome(self, outcome: JoinedOutcome, emit: Emit) -> None:
        """Calibrate on the outcome (:meth:`learn`); nothing to emit."""
        self.learn(outcome)

    def summary(self) -> dict[str, Figure]:
        """``estimated_precision`` and ``estimated_recall`` of the recent predictions."""
        return {"estimated_precision": self.precision, "estimated_recall": self.recall}

    def state(self) -> dict[str, Any]:
        """The calibration and the expected rates as plain values (:meth:`from_state`)."""
        return {"calibration": self.calibration.state(), "expected": self._expected.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PerformanceEstimate:
        estimate = cls("1", 0, 1)
        estimate.calibration = ScoreCalibration.from_state(state["calibration"])
        estimate._expected = PositiveClassRates.from_state(state["expected"])
        return estimate

    @property
    def precision(self) -> float | None:
        """Expected share of the recent predicted positives that are positive."""
        return self._expected.precision

    @property
    def recall(self) -> float | None:
        """Expected share of the recent actual positives that were predicted positive."""
        return self._expected.recall
