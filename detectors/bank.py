"""All the detectors of one model: events in, drift alerts out, and a live summary.

A :class:`DetectorBank` turns prediction events into data signals and joined outcomes into
concept signals, runs each signal's configured detectors (:class:`SignalMonitor`), passes
their firings through the :class:`AlertPolicy` and returns ``DriftAlert`` objects. It does no
I/O: both runtimes and the offline replay feed it the same objects and get the same alerts.
``detected_at`` is the event time (the runtimes pass none either), so alerts and their
incidents are deterministic. Its summary holds the label-free
estimate of the model's accuracy, precision and recall (:mod:`detectors.calibration`) next
to the realised ones.

>>> import random
>>> from datetime import datetime, timedelta, timezone
>>> from detectors.join import JoinedOutcome
>>> rng = random.Random(1)
>>> bank = DetectorBank("fraud")
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> def outcome(i, error_rate):
...     wrong = rng.random() < error_rate
...     t = t0 + timedelta(seconds=i)
...     return JoinedOutcome(request_id=str(i), model_id="fraud", model_version="1",
...         prediction_time=t, label_time=t, prediction=int(wrong), label=0,
...         task="classification", error=float(wrong), score=None)
>>> alerts = [alert for i in range(4800)
...     for alert in bank.observe_outcome(outcome(i, 0.1 if i < 4000 else 0.3))]
>>> [(a.signal, a.detector, int((a.event_time - t0).total_seconds())) for a in alerts]
[('error_rate', 'page_hinkley', 4141), ('error_rate', 'adwin', 4159)]
>>> summary = bank.summary()
>>> summary.status, round(summary.error_rate, 2), summary.signals["error_rate"].status
('drift', 0.29, 'drift')
>>> summary.precision, summary.recall  # every label is 0: no positive class "1" to recall
(0.0, None)
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from detectors.calibration import PerformanceEstimate
from detectors.config import BankConfig
from detectors.join import JoinedOutcome
from detectors.label_health import LabelHealth
from detectors.monitor import Monitor, monitor_for
from detectors.policy import AlertPolicy
from detectors.positive_class import PositiveClassRates
from detectors.signals import (
    ABS_ERROR,
    ERROR_RATE,
    ESTIMATED_ACCURACY,
    LABEL_COVERAGE,
    LABEL_DELAY,
    VOLUME,
    FeatureQuality,
    PredictionSignals,
    Signal,
    SignalValue,
    outcome_signal,
)
from detectors.volume import (
    ARRIVAL_ORDER_GRACE_SECONDS,
    EVENT_ORDER_GRACE_SECONDS,
    TrafficVolume,
)
from schemas.events import DriftAlert, PredictionEvent

Status = Literal["ok", "warning", "drift"]

_SNAPSHOT_FORMAT = 4


class SnapshotFormatError(ValueError):
    """A detector snapshot this build cannot continue from (written by another version)."""


@dataclass(frozen=True, slots=True)
class SignalSummary:
    """The live view of one signal: its estimate (the mean over the recent window; for a
    categorical signal, the distance of its recent shares from the reference) and detector
    statuses."""

    signal: str
    kind: Literal["concept", "data"]
    estimate: float
    n: int
    status: Status
    detectors: dict[str, Status]


@dataclass(frozen=True, slots=True)
class BankSummary:
    """The live view of one model (what the Redis writer stores).

    ``error_rate``/``accuracy`` (classification) and ``mean_absolute_error`` (regression) are
    over the last ``recent_window`` outcomes, and so are ``precision`` and ``recall`` of the
    configured ``positive_label`` (None while undefined: no positive predicted, or none
    actual); ``status`` is the worst signal status. ``event_time`` is the latest time the bank
    has seen: a prediction's time, or the time an outcome became known. The ``estimated_*``
    rates are over the last ``recent_window`` predictions, labelled or not, from their scores
    (None before the calibration is frozen, and for models without scores). ``quality``
    holds each tracked feature's data-quality counts; ``late_for_volume`` counts the
    predictions that came after their interval's volume was given out, and
    ``labels_past_horizon`` the outcomes that came too late for ``label_coverage``.
    ``incident_id`` is the model's latest incident (None before any alert).
    """

    model_id: str
    model_version: str | None
    predictions: int
    outcomes: int
    error_rate: float | None
    accuracy: float | None
    mean_absolute_error: float | None
    status: Status
    last_alert_id: str | None
    signals: dict[str, SignalSummary]
    precision: float | None = None
    recall: float | None = None
    event_time: datetime | None = None
    estimated_accuracy: float | None = None
    estimated_precision: float | None = None
    estimated_recall: float | None = None
    quality: dict[str, FeatureQuality] = field(default_factory=dict)
    late_for_volume: int = 0
    labels_past_horizon: int = 0
    incident_id: str | None = None


class DetectorBank:
    """The detectors, signal trackers and alert policy of one model.

    Parameters
    ----------
    model_id
        The model this bank watches; events of other models are refused.
    config
        Detectors per signal and limits (default: :class:`BankConfig` defaults).
    arrival_order
        Its predictions come in arrival order, not event-time order: the ``volume`` signal
        waits longer for late ones (:data:`~detectors.volume.ARRIVAL_ORDER_GRACE_SECONDS`)
        unless the config sets ``volume_grace_seconds``.
    """

    def __init__(
        self, model_id: str, config: BankConfig | None = None, *, arrival_order: bool = False
    ) -> None:
        self.model_id = model_id
        self.config = config or BankConfig()
        self.model_version: str | None = None
        self.predictions = 0
        self.outcomes = 0
        self._signals = PredictionSignals(
            self.config.max_feature_signals,
            self.config.max_class_signals,
            self.config.quality_reference,
        )
        grace = self.config.volume_grace_seconds
        if grace is None:
            grace = ARRIVAL_ORDER_GRACE_SECONDS if arrival_order else EVENT_ORDER_GRACE_SECONDS
        self._volume = TrafficVolume(self.config.volume_interval_seconds, grace)
        self._labels = LabelHealth(
            self.config.label_horizon_seconds, self.config.volume_interval_seconds
        )
        self._monitors: dict[str, Monitor] = {}
        self._policy = AlertPolicy(
            model_id, self.config.alert_cooldown_events, self.config.incident_gap_seconds
        )
        self._positive = PositiveClassRates(self.config.positive_label, self.config.recent_window)
        self._estimate_of = PerformanceEstimate(
            self.config.positive_label, self.config.calibration_outcomes, self.config.recent_window
        )
        self._event_time: datetime | None = None

    def observe_prediction(
        self, event: PredictionEvent, detected_at: datetime | None = None
    ) -> list[DriftAlert]:
        """Update the data signals with one prediction; the data-drift alerts it raised."""
        return self._observe(
            self.apply_prediction(event),
            event.model_version,
            event.timestamp,
            detected_at or event.timestamp,
        )

    def apply_prediction(self, event: PredictionEvent) -> list[tuple[Signal, SignalValue]]:
        """Count one prediction and update the estimates; its data-signal values, which
        :meth:`observe_prediction` feeds to the detectors (with the traffic volume and the
        label health of the intervals it closed)."""
        self._check_model(event.model_id)
        self.predictions += 1
        self.model_version = event.model_version
        self._saw(event.timestamp)
        values = self._signals.extract(event)
        if (correct := self._estimate_of.expected_correct(event)) is not None:
            values.append((ESTIMATED_ACCURACY, correct))
        values.extend((VOLUME, rate) for rate in self._volume.observe(event.timestamp))
        closed = self._labels.prediction(event.timestamp)
        values.extend((LABEL_COVERAGE, got) for got in closed.coverage)
        values.extend((LABEL_DELAY, delay) for delay in closed.delays)
        return values

    def observe_outcome(
        self, outcome: JoinedOutcome, detected_at: datetime | None = None
    ) -> list[DriftAlert]:
        """Update the concept signal with one joined outcome; the concept-drift alerts.

        The alert's ``event_time`` is the prediction's time; ``detected_at`` defaults to the
        time the outcome became known (the later of prediction and label time).
        """
        return self._observe(
            self.apply_outcome(outcome),
            outcome.model_version,
            outcome.prediction_time,
            detected_at or max(outcome.prediction_time, outcome.label_time),
        )

    def apply_outcome(self, outcome: JoinedOutcome) -> list[tuple[Signal, SignalValue]]:
        """Count one outcome and update the rolling rates, the calibration and the label
        health; its concept signal value, which :meth:`observe_outcome` feeds to the
        detectors."""
        self._check_model(outcome.model_id)
        self.outcomes += 1
        self._saw(max(outcome.prediction_time, outcome.label_time))
        if outcome.task == "classification":
            self._positive.push(outcome.prediction, outcome.label)
        self._estimate_of.learn(outcome)
        self._labels.outcome(outcome.prediction_time, outcome.label_time)
        return [outcome_signal(outcome)]

    def summary(self) -> BankSummary:
        """The live state of every signal and of the model."""
        signals = {name: self._signal_summary(monitor) for name, monitor in self._monitors.items()}
        statuses = {summary.status for summary in signals.values()}
        error_rate = self._estimate(ERROR_RATE)
        return BankSummary(
            model_id=self.model_id,
            model_version=self.model_version,
            predictions=self.predictions,
            outcomes=self.outcomes,
            error_rate=error_rate,
            accuracy=None if error_rate is None else 1.0 - error_rate,
            mean_absolute_error=self._estimate(ABS_ERROR),
            status="drift" if "drift" in statuses else "warning" if "warning" in statuses else "ok",
            last_alert_id=self._policy.last_alert_id,
            incident_id=self._policy.incident_id,
            signals=signals,
            precision=self._positive.precision,
            recall=self._positive.recall,
            event_time=self._event_time,
            estimated_accuracy=self._estimate(ESTIMATED_ACCURACY),
            estimated_precision=self._estimate_of.precision,
            estimated_recall=self._estimate_of.recall,
            quality={name: replace(counts) for name, counts in self._signals.quality.items()},
            late_for_volume=self._volume.late,
            labels_past_horizon=self._labels.uncounted,
        )

    def snapshot(self) -> bytes:
        """The whole state, river detectors included, as bytes for :meth:`restore`."""
        return pickle.dumps((_SNAPSHOT_FORMAT, self), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> DetectorBank:
        """A bank that continues exactly where the snapshotted one stopped.

        ``data`` is unpickled: restore only snapshots this deployment wrote itself. One of
        another format (an older driftstream's) raises :class:`SnapshotFormatError`.
        """
        try:
            snapshot_format, bank = pickle.loads(data)
        except Exception as exc:  # another build's classes may not unpickle into this one's
            raise SnapshotFormatError(f"unreadable detector snapshot: {exc!r}") from exc
        if snapshot_format != _SNAPSHOT_FORMAT or not isinstance(bank, cls):
            raise SnapshotFormatError(
                f"detector snapshot of format {snapshot_format!r}; this build reads"
                f" {_SNAPSHOT_FORMAT}"
            )
        return bank

    def _saw(self, event_time: datetime) -> None:
        if self._event_time is None or event_time > self._event_time:
            self._event_time = event_time

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise ValueError(f"bank of model {self.model_id!r} got an event of {model_id!r}")

    def _observe(
        self,
        values: list[tuple[Signal, SignalValue]],
        model_version: str,
        event_time: datetime,
        detected_at: datetime,
    ) -> list[DriftAlert]:
        alerts: list[DriftAlert] = []
        for signal, value in values:
            monitor = self._monitors.get(signal.name)
            if monitor is None:
                monitor = self._monitors[signal.name] = monitor_for(
                    signal,
                    self.config.detectors_for(signal),
                    signal.recent_window or self.config.recent_window,
                )
            for firing in monitor.update(value):
                alert = self._policy.consider(
                    firing, monitor.n, model_version, event_time, detected_at
                )
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _estimate(self, signal: Signal) -> float | None:
        monitor = self._monitors.get(signal.name)
        return None if monitor is None else monitor.estimate

    def _signal_summary(self, monitor: Monitor) -> SignalSummary:
        detectors: dict[str, Status] = {}
        for name in monitor.detectors:
            if self._policy.in_drift(monitor.signal.name, name):
                detectors[name] = "drift"
            elif monitor.in_warning(name):
                detectors[name] = "warning"
            else:
                detectors[name] = "ok"
        statuses = set(detectors.values())
        return SignalSummary(
            signal=monitor.signal.name,
            kind=monitor.signal.kind,
            estimate=monitor.estimate,
            n=monitor.n,
            status="drift" if "drift" in statuses else "warning" if "warning" in statuses else "ok",
            detectors=detectors,
        )
