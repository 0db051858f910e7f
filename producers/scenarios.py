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

DriftKind = Literal["none", "concept", "data"]


class Scenario(StrEnum):
    """The ways a model's world changes after ``drift_at`` (a prediction index).

    - ``stable``: nothing changes.
    - ``abrupt``: the concept P(y|x) switches at ``drift_at``.
    - ``gradual``: the new concept's share rises linearly over ``drift_width`` predictions.
    - ``data-drift``: the inputs P(x) shift (over ``drift_width``, default at once); the
      concept stays the same.
    - ``recurring``: the concept switches at ``drift_at`` and switches back ``drift_width``
      predictions later.
    """

    STABLE = "stable"
    ABRUPT = "abrupt"
    GRADUAL = "gradual"
    DATA_DRIFT = "data-drift"
    RECURRING = "recurring"

    @property
    def drift_kind(self) -> DriftKind:
        """What drifts: ``concept`` (P(y|x)), ``data`` (P(x)) or ``none``."""
        if self is Scenario.STABLE:
            return "none"
        return "data" if self is Scenario.DATA_DRIFT else "concept"


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
        ``gradual`` window of a fifth of the traffic, a ``recurring`` episode of a third.
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
