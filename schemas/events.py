"""The event contracts: what model servers publish and what alert consumers receive.

Every event is JSON (UTF-8) with a ``schema_version``. The models validate at the edge, so the
rest of driftstream works with typed, trusted objects:

>>> from datetime import datetime, timezone
>>> event = PredictionEvent(
...     request_id="req-1", model_id="fraud", model_version="3",
...     timestamp="2026-01-01T01:00:00+01:00",
...     features={"amount": 12, "country": "NL", "age": None}, prediction="legit",
... )
>>> event.timestamp == datetime(2026, 1, 1, tzinfo=timezone.utc)
True
>>> event.features["amount"]
12.0

The rules, in short: identifiers are non-empty and bounded; timestamps are RFC 3339 text (or
``datetime`` objects) with a timezone and come out in UTC; numbers are finite; JSON booleans are
not numbers (``true`` for a feature, prediction or score is rejected, send ``1``/``0`` or a
string); unknown fields and unknown ``schema_version`` values are rejected. An absent
``schema_version`` means 1, the only version this build reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError, core_schema

SCHEMA_VERSION: Final = 1
MAX_FEATURES = 1000
MAX_TEXT_FEATURE = 1024
"""The longest string feature value, in characters."""
MAX_OUTCOME_TEXT = 256
"""The longest class label, in characters."""

RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
"""The accepted timestamp text: date, ``T``, time, optional fraction, then ``Z`` or an offset."""
_RFC3339 = re.compile(RFC3339, re.ASCII)

RequestId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]
"""Any non-empty string up to 128 characters; the Kafka key of predictions and labels."""

ModelId = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"),
]
"""ASCII letters, digits, ``_ . -``; it becomes part of Redis keys and metric labels."""

Version = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]

AlertId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]
"""A drift alert's identity (``detectors.policy.alert_id``), also naming its incident."""

Name = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/\- ]+$")
]
"""A feature or class name: ASCII letters, digits, space and ``_ . : / -``."""

FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
"""A finite JSON number; integers are accepted and become floats, booleans are rejected."""

Probability = Annotated[FiniteFloat, Field(ge=0.0, le=1.0)]
Count = Annotated[StrictInt, Field(ge=0)]


@dataclass(frozen=True)
class OneError:
    """Report a value that fits no member of a union as one error, ``message``, at the value's
    own location (``features.age``), not one error per member (``features.age.float``, ...)."""

    message: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        union = schema["schema"] if schema["type"] == "nullable" else schema
        if union["type"] != "union":
            raise TypeError(f"OneError applies to unions, not to {union['type']}")
        union = cast(core_schema.UnionSchema, union)
        union["custom_error_type"] = "union_type"
        union["custom_error_message"] = self.message
        return schema


FeatureValue = Annotated[
    FiniteFloat | Annotated[StrictStr, StringConstraints(max_length=MAX_TEXT_FEATURE)] | None,
    OneError(
        f"Input should be a finite number, a string of at most {MAX_TEXT_FEATURE} characters"
        " or null"
    ),
]
"""A finite number (stored as float), a string or null."""

Outcome = Annotated[
    StrictInt
    | FiniteFloat
    | Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_OUTCOME_TEXT)],
    OneError(f"Input should be a finite number or a string of 1 to {MAX_OUTCOME_TEXT} characters"),
]
"""A class label (non-empty string or integer) or a regression value (finite float)."""


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "timestamp_format",
        "Input should be an RFC 3339 timestamp with a timezone, like 2026-01-01T00:00:00Z",
    )


def _as_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "timestamp_range", "Timestamp should fall within years 1 to 9999 in UTC"
        ) from None


UtcTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_as_utc),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339}),
]
"""An RFC 3339 timestamp with a timezone, normalised to UTC (naive timestamps are rejected)."""


def _supported_version(value: Any) -> Any:
    if type(value) is int and value == SCHEMA_VERSION:
        return value
    raise PydanticCustomError(
        "schema_version",
        "unsupported schema_version {version}, this build reads {supported}",
        {"version": json.dumps(value, default=repr), "supported": SCHEMA_VERSION},
    )


class Event(BaseModel):
    """Shared configuration: unknown fields are rejected, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Annotated[Literal[1], BeforeValidator(_supported_version)] = SCHEMA_VERSION


class PredictionEvent(Event):
    """One model answer to one request, published by the model server."""

    request_id: RequestId
    model_id: ModelId
    model_version: Version
    timestamp: UtcTimestamp
    features: Annotated[dict[Name, FeatureValue], Field(max_length=MAX_FEATURES)]
    prediction: Outcome
    score: FiniteFloat | None = None
    probabilities: Annotated[dict[Name, Probability], Field(max_length=MAX_FEATURES)] | None = None


class LabelEvent(Event):
    """The ground truth for an earlier (or, out of order, a later) prediction; ``timestamp``
    is when it became known (the detectors take a model's outcomes in that order)."""

    request_id: RequestId
    model_id: ModelId
    timestamp: UtcTimestamp
    label: Outcome


class WindowStats(BaseModel):
    """Mean and count of a signal over a window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: FiniteFloat
    n: Count


MAX_MOVED_VALUES = 11
"""The most values a categorical alert names: a detector's top K of 10 and ``"other"``."""


class ValueShare(BaseModel):
    """A categorical value's share of a signal's values before and after a change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Annotated[StrictStr, StringConstraints(max_length=MAX_TEXT_FEATURE)]
    before: Probability
    after: Probability


MAX_EXPLAINED_SLICES = 10
"""The most slices of traffic an alert's explanation names."""
MAX_EXPLAINED_SIGNALS = 16
"""The most data signals an explanation lists as alerted in the same window."""

SignalName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=160)]


class SliceContribution(BaseModel):
    """One slice of one feature's traffic and its part in a change of the model's error.

    A slice is a category ``value`` (``"other"``: the categories beyond the reference's top
    ones), a numeric bin ``low <= x < high`` fixed from the reference's quantiles (``None``:
    an open end), or ``missing`` (absent, null or of the wrong type). ``share_*`` is its share
    of the outcomes, ``error_*`` its error rate (or mean absolute error; ``None`` without
    outcomes) before and after the change point. ``contribution = from_error + from_share``:
    its own error change weighted by its mean share, plus its change of share times how far
    its mean error is from the model's; summed over one feature's slices it is the change of
    the model's error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: Name
    value: Annotated[StrictStr, StringConstraints(max_length=MAX_TEXT_FEATURE)] | None = None
    low: FiniteFloat | None = None
    high: FiniteFloat | None = None
    missing: StrictBool = False
    share_before: Probability
    share_after: Probability
    error_before: Annotated[FiniteFloat, Field(ge=0.0)] | None
    error_after: Annotated[FiniteFloat, Field(ge=0.0)] | None
    contribution: FiniteFloat
    from_error: FiniteFloat
    from_share: FiniteFloat


class Explanation(BaseModel):
    """Why a concept alert's error changed (or, for ``estimated_accuracy``, the error estimated
    from the scores): the slices that carry the change, most first.

    ``broad``: no slice carries most of the change (it is everywhere). ``data_signals``: the
    data signals of the model that alerted since the change point. ``n_before``/``n_after``:
    the outcomes (predictions, for ``estimated_accuracy``) the explanation is computed from (a
    sample of the alert's own split).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slices: Annotated[list[SliceContribution], Field(max_length=MAX_EXPLAINED_SLICES)]
    broad: StrictBool
    data_signals: Annotated[list[SignalName], Field(max_length=MAX_EXPLAINED_SIGNALS)] = []
    n_before: Count
    n_after: Count


class DriftAlert(Event):
    """A detector fired: published to the alerts topic, keyed by model_id."""

    alert_id: AlertId
    model_id: ModelId
    model_version: Version
    signal: Annotated[StrictStr, StringConstraints(min_length=1, max_length=160)]
    detector: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    kind: Literal["concept", "data"]
    severity: Literal["warning", "critical"]
    detected_at: UtcTimestamp
    event_time: UtcTimestamp
    before: WindowStats
    after: WindowStats
    events_since_drift_start: Count | None = None
    moved: Annotated[list[ValueShare], Field(max_length=MAX_MOVED_VALUES)] | None = None
    """The values whose share moved, most moved first (categorical signals only)."""
    incident_id: AlertId | None = None
    """The ``alert_id`` of the first alert of the drift episode this one belongs to."""
    explanation: Explanation | None = None
    """Where the error changed (concept alerts and ``estimated_accuracy``; optional within
    schema version 1)."""
