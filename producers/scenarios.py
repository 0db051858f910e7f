"""What happens to a model's world over its traffic: the drift scenarios and their schedule.

A schedule maps each prediction index to the share of the drifted world in effect there:

>>> schedule = DriftSchedule.for_scenario(Scenario.GRADUAL, n_predictions=100, drift_width=3)
>>> [schedule.weight(i) for i in (49, 50, 51, 52, 53)]
[0.0, 0.25, 0.5, 0.75, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from producers.loan_data import SHIFTED_FEATURE

DriftKind = Literal["none", "concept", "data"]

SHIFTED_CATEGORY_FEATURE = "zipcode"
"""The categorical feature whose mix moves under ``category-shift``."""
SHIFTED_CATEGORY_VALUE = "zip0"
"""The value that takes over under ``category-shift`` (one of nine, ~1/9 before)."""
CATEGORY_SHIFT_SHARE = 0.5
"""Share of the drifted requests whose category is set to ``SHIFTED_CATEGORY_VALUE``."""
MISSING_FEATURE_NAME = "hvalue"
"""The feature the logging loses (as null) under ``missing-feature``."""
SURGE_FACTOR = 5.0
"""How many times the request rate grows under ``surge``."""
LATE_FACTOR = 4.0
"""How many times longer labels take to arrive under ``labels-late``."""
CONCEPT_CATEGORY_VALUE = "zip3"
"""The ``zipcode`` whose concept changes under ``concept-category`` (~1/9 of the traffic)."""
CONCEPT_RANGE = (0.0, 46_000.0)
"""The ``salary`` range whose concept changes under ``concept-range`` (~1/5 of the traffic)."""
SLICE_FLIP = 0.7
"""Under ``concept-category`` and ``concept-range``: the chance a request of the changed
slice gets the other class as its truth."""
BROAD_FLIP = 0.15
"""Under ``concept-broad``: the chance any request gets the other class as its truth."""


class Scenario(StrEnum):
    """The ways a model's world changes after ``drift_at`` (a prediction index).

    - ``stable``: nothing changes.
    - ``abrupt``: the concept P(y|x) switches at ``drift_at``.
    - ``gradual``: the new concept's share rises linearly over ``drift_width`` predictions.
    - ``data-drift``: the inputs P(x) shift (over ``drift_width``, default at once); the
      concept stays the same.
    - ``recurring``: the concept switches at ``drift_at`` and switches back ``drift_width``
      predictions later.
    - ``category-shift``: half of the requests get zipcode ``zip0`` (~55% of them have it
      then, ~1/9 before).
    - ``missing-feature``: the emitted requests lose ``hvalue`` (null; the model still saw it).
    - ``surge``: requests arrive ``SURGE_FACTOR`` (5) times as fast.
    - ``labels-stop``: requests from ``drift_at`` on get no ground truth (earlier ones still do).
    - ``labels-late``: the ground truth of requests from ``drift_at`` on takes ``LATE_FACTOR``
      (4) times as long to arrive.
    - ``concept-category``: the concept changes for zipcode ``zip3`` only (its truth flips
      with probability ``SLICE_FLIP``); ``concept-range``: for salaries under 46,000 only;
      ``concept-broad``: everywhere alike (every truth flips with probability
      ``BROAD_FLIP``). Where the error rose is known: the tests of alert explanations.

    The last five are data changes (P(y|x) stays); like ``data-drift`` each comes in at once at
    ``drift_at`` or ramps up over ``drift_width`` predictions.
    """

    STABLE = "stable"
    ABRUPT = "abrupt"
    GRADUAL = "gradual"
    DATA_DRIFT = "data-drift"
    RECURRING = "recurring"
    CATEGORY_SHIFT = "category-shift"
    MISSING_FEATURE = "missing-feature"
    SURGE = "surge"
    LABELS_STOP = "labels-stop"
    LABELS_LATE = "labels-late"
    CONCEPT_CATEGORY = "concept-category"
    CONCEPT_RANGE = "concept-range"
    CONCEPT_BROAD = "concept-broad"

    @property
    def drift_kind(self) -> DriftKind:
        """What drifts: ``concept`` (P(y|x)), ``data`` (P(x) or the traffic) or ``none``."""
        if self is Scenario.STABLE:
            return "none"
        concept = (Scenario.ABRUPT, Scenario.GRADUAL, Scenario.RECURRING, *FLIPS)
        return "concept" if self in concept else "data"

    @property
    def watched_signal(self) -> str | None:
        """The detector signal whose alert marks the change as detected (``None``: no change)."""
        return {
            Scenario.STABLE: None,
            Scenario.ABRUPT: "error_rate",
            Scenario.GRADUAL: "error_rate",
            Scenario.RECURRING: "error_rate",
            Scenario.DATA_DRIFT: f"feature:{SHIFTED_FEATURE}",
            Scenario.CATEGORY_SHIFT: f"category:{SHIFTED_CATEGORY_FEATURE}",
            Scenario.MISSING_FEATURE: f"missing:{MISSING_FEATURE_NAME}",
            Scenario.SURGE: "volume",
            Scenario.LABELS_STOP: "label_coverage",
            Scenario.LABELS_LATE: "label_delay",
            Scenario.CONCEPT_CATEGORY: "error_rate",
            Scenario.CONCEPT_RANGE: "error_rate",
            Scenario.CONCEPT_BROAD: "error_rate",
        }[self]

    def flip(self, features: dict[str, float | str]) -> float:
        """The chance this scenario's drifted world flips the truth of a request (0.0 for
        the scenarios that change the concept otherwise, or not at all)."""
        if self is Scenario.CONCEPT_BROAD:
            return BROAD_FLIP
        if self is Scenario.CONCEPT_CATEGORY:
            return SLICE_FLIP if features.get("zipcode") == CONCEPT_CATEGORY_VALUE else 0.0
        if self is Scenario.CONCEPT_RANGE:
            salary = features.get("salary")
            low, high = CONCEPT_RANGE
            return SLICE_FLIP if isinstance(salary, float) and low <= salary < high else 0.0
        return 0.0


FLIPS = (Scenario.CONCEPT_CATEGORY, Scenario.CONCEPT_RANGE, Scenario.CONCEPT_BROAD)
"""The concept changes by flipping the truth where the scenario says (:meth:`Scenario.flip`)."""


@dataclass(frozen=True)
class DriftSchedule:
    """Where the drift starts and how many predictions its window spans (``None``: no drift)."""

    scenario: Scenario
    start: int | None
    width: int

    @classmethod
    def for_scenario(
        cls,
        scenario: Scenario,
        n_predictions: int,
        drift_at: int | None = None,
        drift_width: int | None = None,
    ) -> DriftSchedule:
        """The schedule with defaults filled in; options a scenario has no use for are ignored.

        Defaults: drift at the middle of the traffic (a third of it for ``recurring``), a
        ``gradual`` window of a fifth of the traffic, a ``recurring`` episode of a third, and
        no window (a change at once) for the data changes.
        """
        if scenario is Scenario.STABLE:
            return cls(scenario, None, 0)
        default_start = n_predictions // 3 if scenario is Scenario.RECURRING else n_predictions // 2
        start = default_start if drift_at is None else drift_at
        if not 0 <= start < n_predictions:
            raise ValueError(f"drift_at={start} is outside the {n_predictions} predictions")
        default_width = {
            Scenario.GRADUAL: n_predictions // 5,
            Scenario.RECURRING: n_predictions // 3,
        }
        width = default_width.get(scenario, 0) if drift_width is None else drift_width
        if scenario is Scenario.ABRUPT:
            width = 0
        if width < 0 or (scenario is Scenario.RECURRING and width == 0):
            raise ValueError(f"drift_width={width} is not a valid width for {scenario}")
        return cls(scenario, start, width)

    def weight(self, index: int) -> float:
        """The share of the drifted world (concept or inputs) at prediction ``index``, 0 to 1."""
        if self.start is None or index < self.start:
            return 0.0
        if self.scenario is Scenario.RECURRING:
            return 1.0 if index < self.start + self.width else 0.0
        return min(1.0, (index - self.start + 1) / (self.width + 1))
