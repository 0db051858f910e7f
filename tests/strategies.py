"""Hypothesis strategies for valid events, for any test that needs realistic traffic::

    @given(prediction_events())
    def test_something(event: PredictionEvent) -> None: ...

Strings are kept short enough that every generated event fits ``MAX_EVENT_BYTES``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from schemas.events import (
    MAX_MOVED_VALUES,
    MAX_OUTCOME_TEXT,
    MAX_TEXT_FEATURE,
    DriftAlert,
    Event,
    LabelEvent,
    PredictionEvent,
    ValueShare,
    WindowStats,
)

MAX_GENERATED_FEATURES = 20
MAX_GENERATED_TEXT = 64


def bounded_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Any Unicode text (no surrogates) of ``min_size`` to ``max_size`` characters."""
    return st.text(min_size=min_size, max_size=max_size)


model_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", fullmatch=True)
names = st.from_regex(r"[A-Za-z0-9_.:/\- ]{1,128}", fullmatch=True)
"""Feature and class names."""
finite_floats = st.floats(allow_nan=False, allow_infinity=False)

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
"""Timezone-aware datetimes at any offset whose UTC time is within years 1 to 9999."""

feature_values = st.one_of(
    st.none(),
    finite_floats,
    st.integers(min_value=-(2**63), max_value=2**63),
    bounded_text(0, MAX_GENERATED_TEXT),
)
outcomes = st.one_of(st.integers(), finite_floats, bounded_text(1, MAX_OUTCOME_TEXT))
"""Predictions and labels: an integer class, a regression value or a class name."""

window_stats = st.builds(WindowStats, mean=finite_floats, n=st.integers(min_value=0))
value_shares = st.builds(
    ValueShare,
    value=bounded_text(0, MAX_TEXT_FEATURE),
    before=st.floats(0.0, 1.0),
    after=st.floats(0.0, 1.0),
)


def prediction_events() -> st.SearchStrategy[PredictionEvent]:
    """Valid predictions, with and without score and probabilities."""
    return st.builds(
        PredictionEvent,
        request_id=bounded_text(1, 128),
        model_id=model_ids,
        model_version=bounded_text(1, 64),
        timestamp=timestamps,
        features=st.dictionaries(names, feature_values, max_size=MAX_GENERATED_FEATURES),
        prediction=outcomes,
        score=st.none() | finite_floats,
        probabilities=st.none() | st.dictionaries(names, st.floats(0.0, 1.0), max_size=5),
    )


def label_events() -> st.SearchStrategy[LabelEvent]:
    """Valid labels."""
    return st.builds(
        LabelEvent,
        request_id=bounded_text(1, 128),
        model_id=model_ids,
        timestamp=timestamps,
        label=outcomes,
    )


def drift_alerts() -> st.SearchStrategy[DriftAlert]:
    """Valid alerts of either kind and severity."""
    return st.builds(
        DriftAlert,
        alert_id=bounded_text(1, 128),
        model_id=model_ids,
        model_version=bounded_text(1, 64),
        signal=bounded_text(1, 160),
        detector=bounded_text(1, 64),
        kind=st.sampled_from(["concept", "data"]),
        severity=st.sampled_from(["warning", "critical"]),
        detected_at=timestamps,
        event_time=timestamps,
        before=window_stats,
        after=window_stats,
        events_since_drift_start=st.none() | st.integers(min_value=0),
        moved=st.none() | st.lists(value_shares, max_size=MAX_MOVED_VALUES),
        incident_id=st.none() | bounded_text(1, 128),
    )


def events() -> st.SearchStrategy[Event]:
    """Any valid event."""
    return st.one_of(prediction_events(), label_events(), drift_alerts())
