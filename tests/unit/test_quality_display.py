"""Data quality and categorical shifts for people: the ``state`` quality line and the moved
values at the end of an alert's feed line."""

from __future__ import annotations

from typing import Any

from schemas.events import DriftAlert
from stream_app.alerts_feed import format_alert
from tests.event_examples import ALERT

CATEGORY_ALERT = DriftAlert.model_validate(
    {
        **ALERT,
        "signal": "category:zipcode",
        "detector": "g_test",
        "kind": "data",
        "before": {"mean": 0.11, "n": 1000},
        "after": {"mean": 0.52, "n": 500},
        "moved": [
            {"value": "zip0", "before": 0.11, "after": 0.52},
            {"value": "zip3", "before": 0.3, "after": 0.1},
            {"value": "bad\nline\x1b[2J", "before": 0.2, "after": 0.12},
            {"value": "zip7", "before": 0.1, "after": 0.08},
        ],
    }
)


def test_a_categorical_alert_names_its_three_most_moved_values() -> None:
    line = format_alert(CATEGORY_ALERT)
    assert line.startswith(format_alert(CATEGORY_ALERT.model_copy(update={"moved": None})))
    assert line.endswith(r" moved: zip0 0.11→0.52, zip3 0.30→0.10, 'bad\nline\x1b[2J' 0.20→0.12")
    assert "zip7" not in line
    assert "\n" not in line  # a hostile value stays on its line, escaped


def test_an_alert_without_moved_values_has_no_moved_part() -> None:
    assert "moved" not in format_alert(DriftAlert.model_validate(ALERT))


def test_state_shows_each_models_quality_problems_compactly(state_of: Any) -> None:
    clean = {"missing": 0, "wrong_type": 0, "out_of_range": 0, "unseen_category": 0}
    lines = state_of(
        {
            "m": {
                "predictions": "20",
                "quality": {
                    "zipcode": {**clean, "unseen_category": 4, "wrong_type": 1},
                    "age": clean,
                    "hvalue": {**clean, "missing": 12},
                },
            },
            "n": {"predictions": "3", "quality": {"age": clean}},
            "o": {"predictions": "1", "quality": {}},  # no features: no line
            "_pipeline": {},
        }
    )
    quality = [line for line in lines if " quality: " in line]
    assert quality == [
        "m quality: hvalue missing 12; zipcode wrong_type 1, unseen_category 4; "
        "1 of 3 features without problems",
        "n quality: 1 of 1 features without problems",
    ]


def test_state_says_what_came_too_late_for_volume_and_label_health(state_of: Any) -> None:
    clean = {"missing": 0, "wrong_type": 0, "out_of_range": 0, "unseen_category": 0}
    lines = state_of(
        {
            "m": {"late_for_volume": "3", "labels_past_horizon": "0", "quality": {"age": clean}},
            "_pipeline": {},
        }
    )
    assert [line for line in lines if " quality: " in line] == [
        "m quality: 1 of 1 features without problems; 3 predictions too late for volume"
    ]


def test_state_shows_the_learned_label_horizon_and_labels_after_the_join_ttl(
    state_of: Any,
) -> None:
    clean = {"missing": 0, "wrong_type": 0, "out_of_range": 0, "unseen_category": 0}
    model = {"label_horizon_seconds": "1863.5", "orphan_labels": "7", "quality": {"age": clean}}
    lines = state_of({"m": model, "_pipeline": {}})
    assert [line for line in lines if " quality: " in line] == [
        "m quality: 1 of 1 features without problems; labels counted within 1,864 s; "
        "7 labels after the join's TTL (orphans: raise join.ttl_seconds)"
    ]
