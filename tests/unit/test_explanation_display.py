"""A concept alert's explanation where people look after the alert itself: the model's latest
one in Redis (``last_explanation``) and its line in ``driftstream state``."""

from __future__ import annotations

from typing import Any

from schemas.events import DriftAlert, Explanation
from stream_app.alerts_feed import format_explanation
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.writer import LiveStateWriter
from tests.event_examples import ALERT, EXPLANATION

EXPLAINED = DriftAlert.model_validate({**ALERT, "explanation": EXPLANATION})


def model_fields(writer: LiveStateWriter, model_id: str) -> dict[Any, Any]:
    return dict(writer._pending.model[model_id])


def test_the_latest_explained_alert_is_kept_and_one_without_leaves_it() -> None:
    writer = LiveStateWriter(client=None, keys=LiveStateKeys("t:"))  # type: ignore[arg-type]
    writer.add_alert(EXPLAINED)
    fields = model_fields(writer, "fraud")
    assert Explanation.model_validate_json(fields["last_explanation"]) == EXPLAINED.explanation
    assert fields["last_explained_signal"] == "error_rate"
    assert fields["last_explained_alert_id"] == EXPLAINED.alert_id
    data = DriftAlert.model_validate({**ALERT, "alert_id": "later", "signal": "amount"})
    writer.add_alert(data)
    fields = model_fields(writer, "fraud")
    assert fields["last_alert_id"] == "later"
    assert fields["last_explained_alert_id"] == EXPLAINED.alert_id


def test_state_says_why_the_latest_concept_alert_fired(state_of: Any) -> None:
    writer = LiveStateWriter(client=None, keys=LiveStateKeys("t:"))  # type: ignore[arg-type]
    writer.add_alert(EXPLAINED)
    stored = {k: str(v) for k, v in model_fields(writer, "fraud").items()}
    lines = state_of({"fraud": stored, "calm": {}, "_pipeline": {}})
    assert EXPLAINED.explanation is not None
    why = format_explanation(EXPLAINED.explanation)
    assert [line for line in lines if "changed (alert" in line] == [
        f"fraud error_rate changed (alert {EXPLAINED.alert_id}), {why}"
    ]
    assert why.startswith("where: country=NL")
