"""Small hand-made events for the core's unit tests (time in seconds after ``T0``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from detectors.join_buffer import JoinedOutcome, join_step
from schemas.events import LabelEvent, PredictionEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def prediction(
    request_id: str, second: float = 0.0, value: str | int = "a", model_id: str = "m"
) -> PredictionEvent:
    return PredictionEvent(
        request_id=request_id,
        model_id=model_id,
        model_version="1",
        timestamp=T0 + timedelta(seconds=second),
        features={"x": 1.0},
        prediction=value,
        score=0.5,
    )


def poisson_traffic(
    model: str, spans: list[tuple[float, float]], rate: float, seed: int
) -> list[PredictionEvent]:
    """Poisson predictions of ``model`` at ``rate`` per second within each (start, end) span
    (no features: traffic only)."""
    rng = random.Random(seed)
    events: list[PredictionEvent] = []
    for start, end in spans:
        t = start
        while (t := t + rng.expovariate(rate)) < end:
            events.append(
                PredictionEvent(
                    request_id=f"{model}{len(events)}",
                    model_id=model,
                    model_version="1",
                    timestamp=T0 + timedelta(seconds=t),
                    features={},
                    prediction=1,
                )
            )
    return events


def label(
    request_id: str, second: float = 0.0, value: str | int = "a", model_id: str = "m"
) -> LabelEvent:
    return LabelEvent(
        request_id=request_id,
        model_id=model_id,
        timestamp=T0 + timedelta(seconds=second),
        label=value,
    )


def outcome(
    request_id: str, second: float = 0.0, wrong: bool = False, model_id: str = "m"
) -> JoinedOutcome:
    """The outcome the join makes of ``prediction`` and ``label`` (label "b" when wrong)."""
    predicted = prediction(request_id, second, "a", model_id)
    truth = label(request_id, second, "b" if wrong else "a", model_id)
    step = join_step(join_step(None, predicted).entry, truth)
    assert step.outcome is not None
    return step.outcome
