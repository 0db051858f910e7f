"""The event contracts and the codec: every rule, the error reasons, and round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from pydantic import ValidationError

from schemas.codec import MAX_EVENT_BYTES, decode, encode
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert, Event, LabelEvent, PredictionEvent
from tests import strategies
from tests.event_examples import EXAMPLES, LABEL, PREDICTION, Example

VALID = [e for e in EXAMPLES if e.field is None]
INVALID = [e for e in EXAMPLES if e.field is not None]
P, L = PredictionEvent, LabelEvent


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _reason(model: type[Event], data: bytes) -> str:
    with pytest.raises(InvalidEvent) as caught:
        decode(model, data)
    assert "\n" not in caught.value.reason
    return caught.value.reason


@pytest.mark.parametrize("example", VALID, ids=lambda e: e.name)
def test_valid_example_is_accepted(example: Example) -> None:
    event = decode(example.model, _json(example.payload))
    assert isinstance(event, example.model)


@pytest.mark.parametrize("example", INVALID, ids=lambda e: e.name)
def test_invalid_example_is_rejected_naming_the_field(example: Example) -> None:
    reason = _reason(example.model, _json(example.payload))
    assert reason.startswith(f"{example.model.__name__}.{example.field}: ")


@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        pytest.param(
            P, b'{"request_id": "r1", ', "PredictionEvent: Invalid JSON: EOF", id="bad JSON"
        ),
        pytest.param(P, b"[1, 2]", "PredictionEvent: Input should be an object", id="array"),
        pytest.param(
            P,
            _json({k: v for k, v in PREDICTION.items() if k != "request_id"}),
            "PredictionEvent.request_id: Field required",
            id="missing request_id",
        ),
        pytest.param(
            P,
            _json({k: v for k, v in PREDICTION.items() if k != "features"}),
            "PredictionEvent.features: Field required",
            id="missing field",
        ),
        pytest.param(
            P,
            _json(PREDICTION).replace(b'"age": null', b'"age": NaN'),
            "PredictionEvent.features.age: Input should be a finite number, a string of at most"
            " 1024 characters or null",
            id="NaN feature",
        ),
        pytest.param(
            P,
            _json(PREDICTION).replace(b'"age": null', b'"age": -Infinity'),
            "PredictionEvent.features.age: Input should be a finite number",
            id="infinite feature",
        ),
        pytest.param(
            P,
            _json(PREDICTION).replace(b'"age": null', b'"age": 1e400'),
            "PredictionEvent.features.age: Input should be a finite number",
            id="overflowing feature",
        ),
        pytest.param(
            P,
            _json(PREDICTION).replace(b'"score": 0.93', b'"score": NaN'),
            "PredictionEvent.score: Input should be a finite number",
            id="NaN score",
        ),
        pytest.param(
            L,
            _json(LABEL).replace(b'"label": "fraud"', b'"label": Infinity'),
            "LabelEvent.label: Input should be a finite number or a string of 1 to 256 characters",
            id="infinite label",
        ),
        pytest.param(
            P,
            _json(PREDICTION | {"model_id": 42}),
            "PredictionEvent.model_id: Input should be a valid string",
            id="wrong type",
        ),
        pytest.param(
            P,
            _json(PREDICTION | {"schema_version": 2}),
            "PredictionEvent.schema_version: unsupported schema_version 2, this build reads 1",
            id="unknown schema_version",
        ),
        pytest.param(
            P,
            _json(PREDICTION).replace(b'"NL"', b'"N\xffL"'),
            "PredictionEvent: payload is not valid UTF-8 (invalid start byte at byte ",
            id="invalid UTF-8",
        ),
        pytest.param(
            P,
            _json(PREDICTION).replace(b'"NL"', b'"\\ud800"'),
            "PredictionEvent: Invalid JSON",
            id="lone surrogate",
        ),
        pytest.param(
            P,
            _json(PREDICTION | {"request_id": "", "model_id": ""}),
            "PredictionEvent.request_id: String should have at least 1 character (+1 more)",
            id="two errors",
        ),
    ],
)
def test_malformed_event_reason(model: type[Event], data: bytes, expected: str) -> None:
    assert _reason(model, data).startswith(expected)


def test_oversize_event_is_rejected_before_parsing() -> None:
    data = b"{" + b" " * MAX_EVENT_BYTES + b"}"
    assert _reason(LabelEvent, data) == (
        f"LabelEvent: event is {MAX_EVENT_BYTES + 2} bytes, over the {MAX_EVENT_BYTES} byte limit"
    )


def test_event_of_exactly_the_limit_is_accepted() -> None:
    data = _json(LABEL)
    assert decode(LabelEvent, data + b" " * (MAX_EVENT_BYTES - len(data))).label == "fraud"


def test_encode_refuses_an_event_consumers_would_reject() -> None:
    features = {f"f{i}": "x" * 100 for i in range(1000)}
    event = PredictionEvent.model_validate(PREDICTION | {"features": features})
    with pytest.raises(InvalidEvent, match=r"^PredictionEvent: event is \d+ bytes, over the"):
        encode(event)


def test_reason_is_one_line_and_bounded_for_hostile_keys() -> None:
    key = "bad\nkey" + "!" * 500
    reason = _reason(PredictionEvent, _json(PREDICTION | {"features": {key: 1}}))
    assert reason.startswith("PredictionEvent.features.bad key!!!")
    assert len(reason) < 200


def test_timestamps_are_normalised_to_utc() -> None:
    event = decode(LabelEvent, _json(LABEL | {"timestamp": "2026-01-01T01:05:00.5+01:00"}))
    assert event.timestamp == datetime(2026, 1, 1, 0, 5, 0, 500000, tzinfo=UTC)
    assert event.timestamp.utcoffset() == timedelta(0)
    assert b'"timestamp":"2026-01-01T00:05:00.500000Z"' in encode(event)


def test_python_datetimes_must_be_aware() -> None:
    eastern = timezone(timedelta(hours=-5))
    event = LabelEvent.model_validate(LABEL | {"timestamp": datetime(2026, 1, 1, tzinfo=eastern)})
    assert event.timestamp == datetime(2026, 1, 1, 5, tzinfo=UTC)
    with pytest.raises(ValidationError, match="Input should have timezone info"):
        LabelEvent.model_validate(LABEL | {"timestamp": datetime(2026, 1, 1)})


def test_numbers_keep_their_meaning() -> None:
    payload = PREDICTION | {"features": {"age": 42}, "prediction": 1, "score": 1}
    event = decode(PredictionEvent, _json(payload))
    assert (event.features["age"], event.prediction, event.score) == (42.0, 1, 1.0)
    assert isinstance(event.features["age"], float)
    assert isinstance(event.prediction, int)
    big = decode(LabelEvent, _json(LABEL | {"label": 10**30}))
    assert big.label == 10**30
    assert decode(LabelEvent, encode(big)) == big


@pytest.mark.parametrize(
    ("field", "value"),
    [("features", {"flag": True}), ("prediction", True), ("score", False)],
)
def test_booleans_are_not_numbers(field: str, value: object) -> None:
    """A JSON boolean would otherwise become 1.0 silently; producers send 1/0 or a string."""
    with pytest.raises(InvalidEvent, match=rf"^PredictionEvent\.{field}"):
        decode(PredictionEvent, _json(PREDICTION | {field: value}))


def test_encode_is_compact_and_leaves_out_absent_options() -> None:
    event = decode(PredictionEvent, _json(PREDICTION | {"score": None, "probabilities": None}))
    data = encode(event)
    assert b" " not in data.replace(b'"legit"', b"")
    assert b"score" not in data
    assert b"probabilities" not in data
    assert b'"age":null' in data
    assert data.startswith(b'{"schema_version":1,')


def test_events_are_immutable() -> None:
    event = decode(LabelEvent, _json(LABEL))
    with pytest.raises(ValidationError, match="frozen"):
        event.label = "legit"  # type: ignore[misc]


@given(strategies.prediction_events())
def test_prediction_round_trip(event: PredictionEvent) -> None:
    assert decode(PredictionEvent, encode(event)) == event


@given(strategies.label_events())
def test_label_round_trip(event: LabelEvent) -> None:
    assert decode(LabelEvent, encode(event)) == event


@given(strategies.drift_alerts())
def test_alert_round_trip(event: DriftAlert) -> None:
    assert decode(DriftAlert, encode(event)) == event


@given(strategies.events())
def test_encoding_is_stable(event: Event) -> None:
    data = encode(event)
    assert encode(decode(type(event), data)) == data
    assert len(data) <= MAX_EVENT_BYTES
