"""A model's live view at one moment: the points of the time series a report draws.

The Redis writer stores one :class:`HistoryPoint` per flush of a model that changed (a capped
stream ``model:{id}:history``); the offline replay records one every few observations. Both
make them from a :class:`~detectors.bank.BankSummary`, so a report of a live run and of a
replay show the same quantities. The time axis is event time.

>>> from datetime import datetime, timezone
>>> from detectors.bank import BankSummary
>>> summary = BankSummary(model_id="m", model_version="1", predictions=10, outcomes=8,
...     error_rate=0.25, accuracy=0.75, mean_absolute_error=None, status="ok",
...     last_alert_id=None, signals={}, figures={"precision": 0.5, "recall": None},
...     event_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> point = HistoryPoint.of(summary)
>>> point.accuracy, point.precision, point.recall
(0.75, 0.5, None)
>>> HistoryPoint.from_json(point.to_json()) == point
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from detectors.bank import BankSummary


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A model's rolling rates, counts and signal estimates at ``event_time``.

    ``signals`` maps every tracked signal to its estimate (the mean of its recent window), so
    a report can draw a signal before and after it alerted.
    """

    event_time: datetime
    predictions: int
    outcomes: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    error_rate: float | None
    mean_absolute_error: float | None
    signals: dict[str, float]

    @classmethod
    def of(cls, summary: BankSummary) -> HistoryPoint | None:
        """The point of a bank's summary; None before the bank has seen any event."""
        if summary.event_time is None:
            return None
        return cls(
            event_time=summary.event_time,
            predictions=summary.predictions,
            outcomes=summary.outcomes,
            accuracy=summary.accuracy,
            precision=summary.figures.get("precision"),
            recall=summary.figures.get("recall"),
            error_rate=summary.error_rate,
            mean_absolute_error=summary.mean_absolute_error,
            signals={name: signal.estimate for name, signal in summary.signals.items()},
        )

    def to_json(self) -> str:
        """Compact JSON (estimates to 6 significant digits), for :meth:`from_json`."""
        fields: dict[str, Any] = asdict(self)
        fields["event_time"] = self.event_time.isoformat()
        fields["signals"] = {name: float(f"{v:.6g}") for name, v in self.signals.items()}
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> HistoryPoint:
        """The point :meth:`to_json` wrote (an exception if ``text`` is not one)."""
        fields = json.loads(text)
        fields["event_time"] = datetime.fromisoformat(fields["event_time"])
        return cls(**fields)
