"""The hand-written loop ``bench.core`` measures the replay against: what a user of pydantic and
river would write over a ``driftstream simulate --to-file`` recording::

    .venv/bin/python -m bench.baseline_loop FILE

A line's kind is its fixed prefix (``{"kind": "prediction", "event": `` or ``...label...``), and
the event after it goes through pydantic's ``model_validate_json`` into the project's
``PredictionEvent`` or ``LabelEvent``. Predictions and labels meet in a dict by request id
(either may come first); river's ``ADWIN(delta=1e-4)`` watches each numeric feature and the
score of every model, ``ADWIN()`` and ``PageHinkley()`` the 0/1 error of each joined pair. No
TTL, no event-time order, no deduplication, no data quality: it prints the events, joined pairs
and detections.
"""

from __future__ import annotations

import sys
from typing import Any

from river import drift

from schemas.events import LabelEvent, PredictionEvent

PREDICTION = b'{"kind": "prediction", "event": '
LABEL = b'{"kind": "label", "event": '


def main(path: str) -> None:
    """Run the loop over the file at ``path`` and print its three counts."""
    data: dict[tuple[str, str], Any] = {}  # river's detectors: update(x), drift_detected
    errors: dict[str, tuple[Any, Any]] = {}
    predictions: dict[str, PredictionEvent] = {}
    labels: dict[str, LabelEvent] = {}
    events = pairs = detections = 0
    with open(path, "rb") as lines:
        for line in lines:
            events += 1
            if line.startswith(PREDICTION):
                p = PredictionEvent.model_validate_json(line.rstrip()[len(PREDICTION) : -1])
                values = {k: v for k, v in p.features.items() if isinstance(v, float)}
                if p.score is not None:
                    values["score"] = p.score
                for name, value in values.items():
                    if (detector := data.get((p.model_id, name))) is None:
                        detector = data[p.model_id, name] = drift.ADWIN(delta=1e-4)  # type: ignore[no-untyped-call]
                    detector.update(value)
                    detections += detector.drift_detected
                if (label := labels.pop(p.request_id, None)) is None:
                    predictions[p.request_id] = p
                    continue
            else:
                label = LabelEvent.model_validate_json(line.rstrip()[len(LABEL) : -1])
                if (found := predictions.pop(label.request_id, None)) is None:
                    labels[label.request_id] = label
                    continue
                p = found
            pairs += 1
            error = float(p.prediction != label.label)
            if (pair := errors.get(p.model_id)) is None:
                pair = errors[p.model_id] = (drift.ADWIN(), drift.PageHinkley())  # type: ignore[no-untyped-call]
            for detector in pair:
                detector.update(error)
                detections += detector.drift_detected
    print(f"events {events}\njoined pairs {pairs}\ndetections {detections}")


if __name__ == "__main__":
    main(sys.argv[1])
