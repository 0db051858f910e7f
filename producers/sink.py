"""What every event sink (Kafka, a file) reports when it closes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from schemas.events import LabelEvent, PredictionEvent

MAX_ERRORS_KEPT = 5


@dataclass
class DeliveryStats:
    """Events handed to a sink and what became of them."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    """Still queued when the sink gave up waiting at close."""
    first_errors: list[str] = field(default_factory=list)
    """The first few delivery errors, verbatim."""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.undelivered == 0

    def add_error(self, error: str) -> None:
        self.failed += 1
        if len(self.first_errors) < MAX_ERRORS_KEPT:
            self.first_errors.append(error)

    def summary(self) -> str:
        text = (
            f"{self.sent} sent, {self.delivered} delivered, {self.failed} failed, "
            f"{self.undelivered} undelivered"
        )
        return (
            f"{text}; first errors: {'; '.join(self.first_errors)}" if self.first_errors else text
        )


class DeliveryError(RuntimeError):
    """Some events were not delivered; ``stats`` says how many and why."""

    def __init__(self, stats: DeliveryStats) -> None:
        super().__init__(stats.summary())
        self.stats = stats


class EventSink(Protocol):
    """Where simulated or served events go."""

    def send(self, event: PredictionEvent | LabelEvent) -> None: ...

    def close(self) -> DeliveryStats: ...
