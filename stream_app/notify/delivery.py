"""Retries with backoff: one alert to one sink, until it takes it, refuses it, or the cap.

>>> list(Backoff(attempts=5, first_seconds=1.0, max_seconds=4.0).delays())
[1.0, 2.0, 4.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from schemas.events import DriftAlert
from stream_app.notify.sinks import DeliveryError, Sink


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently a failed delivery is tried again.

    Parameters
    ----------
    attempts
        Tries per alert and sink, the first included; after the last, the alert is
        dead-lettered for that sink.
    first_seconds
        The wait before the second try; each later wait doubles, up to ``max_seconds``.
    max_seconds
        The longest wait between two tries.
    """

    attempts: int = 5
    first_seconds: float = 1.0
    max_seconds: float = 60.0

    def delays(self) -> Iterator[float]:
        """The waits between the tries: ``attempts - 1`` of them."""
        for retry in range(self.attempts - 1):
            yield min(self.first_seconds * 2**retry, self.max_seconds)


@dataclass(frozen=True)
class Outcome:
    """How one alert's delivery to one sink ended: ``delivered``, ``failed`` (refused, or
    still failing after the cap: ``reason`` says which) or ``stopped`` (asked to stop while
    waiting to try again); ``attempts`` made."""

    status: str
    attempts: int
    reason: str = ""


Retrying = Callable[[Sink, DriftAlert, int, float, str], None]
"""Told before each wait: the sink, the alert, the attempt that failed, the wait, why."""


def deliver(
    sink: Sink,
    alert: DriftAlert,
    payload: bytes,
    backoff: Backoff,
    wait: Callable[[float], bool],
    retrying: Retrying,
) -> Outcome:
    """Hand ``alert`` to ``sink``, trying again after each retryable failure.

    ``wait(seconds)`` sleeps and returns True if the notifier was asked to stop meanwhile.
    """
    delays = backoff.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            sink.deliver(alert, payload)
        except DeliveryError as exc:
            if not exc.retry:
                return Outcome("failed", attempt, f"refused: {exc.reason}")
            delay = next(delays, None)
            if delay is None:
                return Outcome("failed", attempt, f"{exc.reason} (after {attempt} attempts)")
            retrying(sink, alert, attempt, delay, exc.reason)
            if wait(delay):
                return Outcome("stopped", attempt, exc.reason)
        else:
            return Outcome("delivered", attempt)
