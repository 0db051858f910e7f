"""Hand-written JSON events, valid and invalid, shared by the model tests and the JSON Schema tests.

Each rule of the contracts has a passing and a failing example. A failing example names the
field the reason must point at; ``schema_can_tell=False`` marks the few rules JSON Schema
cannot express (listed in ``schemas/export.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import (
    MAX_FEATURES,
    MAX_OUTCOME_TEXT,
    MAX_TEXT_FEATURE,
    DriftAlert,
    Event,
    LabelEvent,
    PredictionEvent,
)

MISSING: Any = object()
"""An override value that removes the field."""

PREDICTION: dict[str, Any] = {
    "schema_version": 1,
    "request_id": "req-1",
    "model_id": "fraud",
    "model_version": "3",
    "timestamp": "2026-01-01T00:00:00Z",
    "features": {"amount": 12.5, "country": "NL", "age": None},
    "prediction": "legit",
    "score": 0.93,
    "probabilities": {"legit": 0.93, "fraud": 0.07},
}
LABEL: dict[str, Any] = {
    "schema_version": 1,
    "request_id": "req-1",
    "model_id": "fraud",
    "timestamp": "2026-01-01T00:05:00Z",
    "label": "fraud",
}
ALERT: dict[str, Any] = {
    "schema_version": 1,
    "alert_id": "fraud:3:error_rate:adwin:1767225600",
    "model_id": "fraud",
    "model_version": "3",
    "signal": "error_rate",
    "detector": "adwin",
    "kind": "concept",
    "severity": "critical",
    "detected_at": "2026-01-01T00:10:00Z",
    "event_time": "2026-01-01T00:09:58.5+00:00",
    "before": {"mean": 0.05, "n": 1200},
    "after": {"mean": 0.31, "n": 140},
    "events_since_drift_start": 140,
}
SLICE: dict[str, Any] = {
    "feature": "country",
    "value": "NL",
    "share_before": 0.11,
    "share_after": 0.14,
    "error_before": 0.08,
    "error_after": 0.71,
    "contribution": 0.09,
    "from_error": 0.078,
    "from_share": 0.012,
}
EXPLANATION: dict[str, Any] = {
    "slices": [
        SLICE,
        SLICE | {"feature": "amount", "value": None, "low": 500.0, "high": None},
        SLICE | {"feature": "age", "value": None, "missing": True, "error_before": None},
    ],
    "broad": False,
    "data_signals": ["category:country"],
    "n_before": 2100,
    "n_after": 260,
}
BASES: dict[type[Event], dict[str, Any]] = {
    PredictionEvent: PREDICTION,
    LabelEvent: LABEL,
    DriftAlert: ALERT,
}


@dataclass(frozen=True)
class Example:
    """One JSON event and what the contracts say about it."""

    name: str
    model: type[Event]
    payload: dict[str, Any]
    field: str | None = None
    """``None`` for a valid event; else the location the reason names, e.g. ``features.age``."""
    schema_can_tell: bool = True


def ok(name: str, model: type[Event], **overrides: Any) -> Example:
    """A valid event: the base event of ``model`` with ``overrides``."""
    return Example(name, model, _payload(model, overrides))


def bad(
    name: str, model: type[Event], field: str, schema: bool = True, **overrides: Any
) -> Example:
    """An invalid event whose reason must name ``field``."""
    return Example(name, model, _payload(model, overrides), field, schema)


def _payload(model: type[Event], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = BASES[model] | overrides
    return {key: value for key, value in merged.items() if value is not MISSING}


def _features(**values: Any) -> dict[str, Any]:
    features: dict[str, Any] = PREDICTION["features"]
    return features | values


P, L, A = PredictionEvent, LabelEvent, DriftAlert
_WIDE = {f"f{i}": float(i) for i in range(MAX_FEATURES)}

EXAMPLES: list[Example] = [
    # identifiers: non-empty, bounded, strings; model_id restricted to a key-safe alphabet
    ok("request_id any text", P, request_id="req 1/ü"),
    ok("request_id 128 chars", P, request_id="r" * 128),
    bad("request_id empty", P, "request_id", request_id=""),
    bad("request_id 129 chars", P, "request_id", request_id="r" * 129),
    bad("request_id number", P, "request_id", request_id=123),
    bad("request_id missing", P, "request_id", request_id=MISSING),
    bad("label request_id missing", L, "request_id", request_id=MISSING),
    ok("model_id with _ . -", P, model_id="fraud-v2.1_eu"),
    ok("model_id 128 chars", P, model_id="m" * 128),
    bad("model_id empty", P, "model_id", model_id=""),
    bad("model_id with space", P, "model_id", model_id="fraud v2"),
    bad("model_id leading dash", P, "model_id", model_id="-fraud"),
    bad("model_id non-ASCII", P, "model_id", model_id="fraüd"),
    bad("model_id 129 chars", P, "model_id", model_id="m" * 129),
    ok("model_version 64 chars", P, model_version="v" * 64),
    bad("model_version empty", P, "model_version", model_version=""),
    bad("model_version 65 chars", P, "model_version", model_version="v" * 65),
    bad("model_version number", P, "model_version", model_version=3),
    # timestamps: RFC 3339 text with a timezone
    ok("timestamp with offset", P, timestamp="2026-01-01T01:00:00+01:00"),
    ok("timestamp with nanoseconds", P, timestamp="2026-01-01T00:00:00.123456789Z"),
    bad("timestamp naive", P, "timestamp", timestamp="2026-01-01T00:00:00"),
    bad("timestamp date only", P, "timestamp", timestamp="2026-01-01"),
    bad("timestamp with a space", P, "timestamp", timestamp="2026-01-01 00:00:00Z"),
    bad("timestamp epoch number", P, "timestamp", timestamp=1767225600),
    bad("timestamp epoch text", P, "timestamp", timestamp="1767225600"),
    bad("timestamp no such day", P, "timestamp", False, timestamp="2026-02-30T00:00:00Z"),
    bad(
        "timestamp before year 1 in UTC",
        P,
        "timestamp",
        False,
        timestamp="0001-01-01T00:00:00+01:00",
    ),
    bad("label timestamp naive", L, "timestamp", timestamp="2026-01-01T00:05:00"),
    bad("alert detected_at missing", A, "detected_at", detected_at=MISSING),
    # features: name -> finite number | string | null
    ok("feature integer", P, features=_features(age=42)),
    ok("feature empty string", P, features=_features(country="")),
    ok("feature long string", P, features=_features(note="x" * MAX_TEXT_FEATURE)),
    ok("feature name alphabet", P, features={"a b/c:d.e-f_G9": 1}),
    ok("no features", P, features={}),
    ok("most features", P, features=_WIDE),
    bad("feature boolean", P, "features.age", features=_features(age=True)),
    bad("feature list", P, "features.age", features=_features(age=[1, 2])),
    bad("feature object", P, "features.age", features=_features(age={"v": 1})),
    bad("feature string too long", P, "features.note", features=_features(note="x" * 1025)),
    bad("feature name empty", P, "features..[key]", features=_features(**{"": 1})),
    bad("feature name punctuation", P, "features.age!.[key]", features=_features(**{"age!": 1})),
    bad("feature name non-ASCII", P, "features.größe.[key]", features=_features(größe=1)),
    bad("too many features", P, "features", features=_WIDE | {"one_more": 1.0}),
    bad("features not an object", P, "features", features=[1, 2]),
    # prediction and label: finite number or non-empty bounded string; no booleans
    ok("prediction integer class", P, prediction=1),
    ok("prediction regression value", P, prediction=-3.25),
    ok("prediction longest label", P, prediction="c" * MAX_OUTCOME_TEXT),
    bad("prediction boolean", P, "prediction", prediction=True),
    bad("prediction empty", P, "prediction", prediction=""),
    bad("prediction too long", P, "prediction", prediction="c" * (MAX_OUTCOME_TEXT + 1)),
    bad("prediction null", P, "prediction", prediction=None),
    bad("prediction list", P, "prediction", prediction=["legit"]),
    ok("label integer", L, label=0),
    bad("label boolean", L, "label", label=False),
    # score and probabilities
    ok("score absent", P, score=MISSING, probabilities=MISSING),
    ok("score null", P, score=None, probabilities=None),
    ok("score integer", P, score=1),
    bad("score as text", P, "score", score="0.93"),
    bad("score boolean", P, "score", score=True),
    ok("probability bounds", P, probabilities={"legit": 1, "fraud": 0.0}),
    bad("probability over 1", P, "probabilities.legit", probabilities={"legit": 1.5}),
    bad("probability negative", P, "probabilities.fraud", probabilities={"fraud": -0.1}),
    bad("probability boolean", P, "probabilities.legit", probabilities={"legit": True}),
    bad("probability name punctuation", P, "probabilities.a*.[key]", probabilities={"a*": 0.5}),
    # schema_version and unknown fields
    ok("schema_version absent means 1", P, schema_version=MISSING),
    bad("schema_version 2", P, "schema_version", schema_version=2),
    bad("schema_version 0", L, "schema_version", schema_version=0),
    bad("schema_version text", P, "schema_version", schema_version="1"),
    bad("schema_version boolean", P, "schema_version", schema_version=True),
    bad("schema_version 1.0", A, "schema_version", False, schema_version=1.0),
    bad("unknown field", P, "extra", extra=1),
    bad("label unknown field", L, "score", score=0.5),
    # drift alerts
    ok("alert minimal", A, events_since_drift_start=MISSING),
    ok("alert data drift warning", A, kind="data", severity="warning", signal="feature:age"),
    bad("alert kind unknown", A, "kind", kind="covariate"),
    bad("alert severity unknown", A, "severity", severity="low"),
    bad("alert signal empty", A, "signal", signal=""),
    bad("alert detector too long", A, "detector", detector="d" * 65),
    bad("alert n negative", A, "before.n", before={"mean": 0.1, "n": -1}),
    bad("alert n fractional", A, "before.n", before={"mean": 0.1, "n": 1.5}),
    bad("alert n as 3.0", A, "after.n", False, after={"mean": 0.1, "n": 3.0}),
    bad("alert n boolean", A, "after.n", after={"mean": 0.1, "n": True}),
    bad("alert mean text", A, "after.mean", after={"mean": "high", "n": 3}),
    bad("alert stats unknown field", A, "after.std", after={"mean": 0.1, "n": 3, "std": 1}),
    bad("alert events since negative", A, "events_since_drift_start", events_since_drift_start=-1),
    ok(
        "alert category moved",
        A,
        signal="category:zipcode",
        detector="g_test",
        moved=[
            {"value": "zip0", "before": 0.11, "after": 0.52},
            {"value": "other", "before": 0.3, "after": 0.1},
        ],
    ),
    ok("alert moved null", A, moved=None),
    bad(
        "alert moved share above 1",
        A,
        "moved.0.after",
        moved=[{"value": "a", "before": 0.1, "after": 1.5}],
    ),
    bad(
        "alert moved too many",
        A,
        "moved",
        moved=[{"value": str(i), "before": 0.0, "after": 0.0} for i in range(12)],
    ),
    bad(
        "alert moved unknown field",
        A,
        "moved.0.n",
        moved=[{"value": "a", "before": 0.1, "after": 0.2, "n": 3}],
    ),
    ok("alert explained", A, explanation=EXPLANATION),
    ok("alert explanation null", A, explanation=None),
    ok("alert explained broad, no slices", A, explanation=EXPLANATION | {"slices": []}),
    bad(
        "alert explanation too many slices",
        A,
        "explanation.slices",
        explanation=EXPLANATION | {"slices": [SLICE] * 11},
    ),
    bad(
        "alert explanation share above 1",
        A,
        "explanation.slices.0.share_after",
        explanation=EXPLANATION | {"slices": [SLICE | {"share_after": 1.2}]},
    ),
    bad(
        "alert explanation error negative",
        A,
        "explanation.slices.0.error_before",
        explanation=EXPLANATION | {"slices": [SLICE | {"error_before": -0.1}]},
    ),
    bad(
        "alert explanation unknown field",
        A,
        "explanation.slices.0.lift",
        explanation=EXPLANATION | {"slices": [SLICE | {"lift": 3.0}]},
    ),
    bad(
        "alert explanation broad missing",
        A,
        "explanation.broad",
        explanation={k: v for k, v in EXPLANATION.items() if k != "broad"},
    ),
    ok("alert incident of its own", A, incident_id=ALERT["alert_id"]),
    ok("alert incident of an earlier alert", A, incident_id="fraud:3:error_rate:ph:1767225000"),
    ok("alert incident null", A, incident_id=None),
    bad("alert incident empty", A, "incident_id", incident_id=""),
    bad("alert incident 129 chars", A, "incident_id", incident_id="i" * 129),
    bad("alert incident number", A, "incident_id", incident_id=7),
]
