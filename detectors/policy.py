"""When a detector firing becomes a DriftAlert, and the alert's deterministic identity.

One drift should give one alert: after an alert of a (signal, detector) pair, further
firings of that pair are suppressed until the signal has seen ``cooldown_events`` more values
(a ``"critical"`` firing after a ``"warning"`` alert is an escalation and passes; a warning
after a critical alert waits for the cooldown too).

The ``alert_id`` hashes (model, signal, detector, sequence number of the pair's alerts), not
the wall clock or the triggering event, so a replay of the same stream names the same alerts
even when the live path interleaved events slightly differently.

The alerts of one drift episode of a model, whatever their signal and detector, share an
``incident_id``: the ``alert_id`` of its first alert. An alert joins the model's open incident
when it is of the same model version and detected at most ``incident_gap_seconds`` after the
incident's latest alert; otherwise it opens a new one (so does a retrained model's first
alert). It depends on ``detected_at`` and the order of the alerts alone, so a replay groups
them as live.

>>> alert_id("fraud", "error_rate", "adwin", 0)
'ee1a89395ee49fcee568a9a867702b5d'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from detectors.monitor import Firing
from schemas.events import DriftAlert


def alert_id(model_id: str, signal: str, detector: str, sequence: int) -> str:
    """The identity of the ``sequence``-th alert (from 0) of a model's signal and detector."""
    key = "\x1f".join((model_id, signal, detector, str(sequence)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(slots=True)
class _PairHistory:
    """The alerts so far of one (signal, detector): how many, when (signal values seen), and
    the means before and after the last critical one."""

    alerts: int = 0
    last_alert_at: int | None = None
    last_critical_at: int | None = None
    episode: tuple[float, float] | None = None  # (baseline, first shifted mean) of a drift


@dataclass(frozen=True, slots=True)
class _Incident:
    """A model's open incident: its id, the model version it was opened for, and the latest
    ``detected_at`` of its alerts."""

    incident_id: str
    model_version: str
    latest: datetime


class AlertPolicy:
    """Cooldown, identity and incident of the alerts of one model.

    Parameters
    ----------
    model_id
        The model whose firings this policy judges.
    cooldown_events
        Values of a signal after an alert of a (signal, detector) during which that pair's
        firings are not alerted (0: every firing is alerted).
    incident_gap_seconds
        How long after the open incident's latest alert (``detected_at``) an alert of the same
        model version still joins it.
    """

    def __init__(self, model_id: str, cooldown_events: int, incident_gap_seconds: float) -> None:
        self.model_id = model_id
        self.cooldown_events = cooldown_events
        self.incident_gap_seconds = incident_gap_seconds
        self.last_alert_id: str | None = None
        self._pairs: dict[tuple[str, str], _PairHistory] = {}
        self._incident: _Incident | None = None

    @property
    def incident_id(self) -> str | None:
        """The id of the model's latest incident (None before its first alert)."""
        return None if self._incident is None else self._incident.incident_id

    def consider(
        self,
        firing: Firing,
        observed: int,
        model_version: str,
        event_time: datetime,
        detected_at: datetime,
        *,
        cooldown: bool = True,
    ) -> DriftAlert | None:
        """The alert for ``firing`` at the signal's ``observed``-th value, or None (cooldown;
        ``cooldown=False`` for a firing that comes once per episode by itself, as a model's
        silence)."""
        pair = self._pairs.setdefault((firing.signal.name, firing.detector), _PairHistory())
        last = pair.last_critical_at if firing.severity == "critical" else pair.last_alert_at
        if cooldown and last is not None and observed - last < self.cooldown_events:
            return None
        identity = alert_id(self.model_id, firing.signal.name, firing.detector, pair.alerts)
        gap = timedelta(seconds=self.incident_gap_seconds)
        incident = _next_incident(self._incident, identity, model_version, detected_at, gap)
        alert = DriftAlert(
            alert_id=identity,
            model_id=self.model_id,
            model_version=model_version,
            signal=firing.signal.name,
            detector=firing.detector,
            kind=firing.signal.kind,
            severity=firing.severity,
            detected_at=detected_at,
            event_time=event_time,
            before=firing.before,
            after=firing.after,
            events_since_drift_start=firing.events_since_drift_start,
            moved=None if firing.moved is None else list(firing.moved),
            incident_id=incident.incident_id,
        )
        pair.alerts += 1
        pair.last_alert_at = observed
        if firing.severity == "critical":
            pair.last_critical_at = observed
            pair.episode = _next_episode(pair.episode, firing.before.mean, firing.after.mean)
        self.last_alert_id = alert.alert_id
        self._incident = incident
        return alert

    def state(self) -> dict[str, Any]:
        """The alert history as plain values (:meth:`restore` takes it back)."""
        incident = self._incident
        return {
            "last_alert_id": self.last_alert_id,
            "pairs": [
                (signal, detector, p.alerts, p.last_alert_at, p.last_critical_at, p.episode)
                for (signal, detector), p in self._pairs.items()
            ],
            "incident": None
            if incident is None
            else (incident.incident_id, incident.model_version, incident.latest.isoformat()),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state` (the settings stay this policy's own)."""
        self.last_alert_id = state["last_alert_id"]
        self._pairs = {
            (signal, detector): _PairHistory(*rest) for signal, detector, *rest in state["pairs"]
        }
        incident = state["incident"]
        self._incident = (
            None
            if incident is None
            else _Incident(incident[0], incident[1], datetime.fromisoformat(incident[2]))
        )

    def in_drift(self, signal: str, detector: str) -> bool:
        """Whether the pair is in a drift episode: it raised a critical alert, and no later
        critical alert brought the signal back near the mean it had before (so a model stays
        in "drift" while its accuracy stays down, not just for a cooldown)."""
        pair = self._pairs.get((signal, detector))
        return pair is not None and pair.episode is not None


def _next_episode(
    episode: tuple[float, float] | None, before: float, after: float
) -> tuple[float, float] | None:
    """The drift episode after a critical alert that moved a signal from ``before`` to
    ``after``: a new one starts from ``before``; an open one ends when ``after`` is back within
    half its first shift of its baseline."""
    if episode is None:
        return before, after
    baseline, first = episode
    return None if abs(after - baseline) <= abs(first - baseline) / 2 else episode


def _next_incident(
    incident: _Incident | None,
    alert_id: str,
    model_version: str,
    detected_at: datetime,
    gap: timedelta,
) -> _Incident:
    """The incident of an alert: the open ``incident`` if it is of the same model version and
    its latest alert at most ``gap`` before ``detected_at`` (its latest then moves up to
    ``detected_at`` if later), else a new one named by ``alert_id``."""
    if (
        incident is not None
        and incident.model_version == model_version
        and detected_at - incident.latest <= gap
    ):
        return replace(incident, latest=max(incident.latest, detected_at))
    return _Incident(alert_id, model_version, detected_at)
