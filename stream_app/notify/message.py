"""What every sink gets for an alert, and which alerts pass ``notify``'s filters.

The payload is the alert's JSON (as on the alerts topic) plus ``text``, the alert's line as
``driftstream alerts`` prints it, so a Slack incoming webhook takes it as it is:

>>> alert = DriftAlert.model_validate({
...     "alert_id": "a1", "model_id": "fraud", "model_version": "3", "signal": "error_rate",
...     "detector": "adwin", "kind": "concept", "severity": "critical",
...     "detected_at": "2026-01-01T00:05:00Z", "event_time": "2026-01-01T00:04:00Z",
...     "before": {"mean": 0.1, "n": 900}, "after": {"mean": 0.4, "n": 100}})
>>> body = json.loads(payload(alert))
>>> body["alert_id"], body["text"][:55]
('a1', 'driftstream: 2026-01-01 00:04:00 CRITICAL fraud concept')
>>> AlertFilter(models=frozenset({"churn"})).passes(alert)
False
>>> AlertFilter(min_severity="critical", kinds=frozenset({"concept"})).passes(alert)
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from schemas.codec import encode
from schemas.events import DriftAlert
from stream_app.alerts_feed import format_alert

Severity = Literal["warning", "critical"]
Kind = Literal["concept", "data"]

SEVERITY_RANK: dict[str, int] = {"warning": 0, "critical": 1}


def payload(alert: DriftAlert) -> bytes:
    """The alert's JSON with a ``text`` line for people (and Slack)."""
    body = json.loads(encode(alert))
    body["text"] = f"driftstream: {format_alert(alert)}"
    return json.dumps(body, ensure_ascii=False).encode()


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to deliver.

    Parameters
    ----------
    models
        Only these models' alerts (empty: every model's).
    kinds
        Only alerts of these kinds (empty: both).
    min_severity
        Only alerts at least this severe (``critical`` leaves out warnings).
    new_incidents_only
        Only the first alert of each incident (one message per incident, for pagers).
    """

    models: frozenset[str] = frozenset()
    kinds: frozenset[Kind] = frozenset()
    min_severity: Severity = "warning"
    new_incidents_only: bool = False

    def passes(self, alert: DriftAlert) -> bool:
        """Whether ``alert`` is to be delivered."""
        return (
            (not self.models or alert.model_id in self.models)
            and (not self.kinds or alert.kind in self.kinds)
            and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]
            and not (self.new_incidents_only and alert.incident_id not in (None, alert.alert_id))
        )
