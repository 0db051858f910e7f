"""The offline replay: the live worker's processors over one in-memory join.

A :class:`Backtest` feeds a recorded stream, event by event in file order, to the processors
every runtime runs (:mod:`pipeline.join`, :mod:`pipeline.detect`): either side goes through the
join, a prediction seen for the first time updates its model's data signals, a match updates
the concept signals, expired entries are counted. The observations go straight from the join
processor to the detection processor, without the round trip through the ``observations``
topic. Alerts carry event times as ``detected_at``, so replaying a stream twice gives the same
alerts, and the same rules as live (a prediction sent twice is applied once).

One difference from the worker: the replay has a single join buffer (one watermark, one
``max_pending`` cap), where the worker has one per input partition. Like the Kafka-native
worker it holds each model's observations ``lateness_seconds`` to apply them in event-time
order; :meth:`Backtest.finish` applies what is held when the stream ends (:meth:`summary`
calls it).

With ``history_every=n`` it also records each model's time series (what the worker writes to
Redis once a second): a :class:`~detectors.history.HistoryPoint` after each batch that took the
model past another ``n`` observations (predictions and outcomes), for ``driftstream replay
--report``. :meth:`Backtest.process_many` takes many events at once, so each model's
observations reach its bank in batches, as in the worker.

>>> from producers.simulator import ModelTraffic, simulate
>>> traffic = ModelTraffic("credit", "abrupt", n_predictions=3000, seed=1, warmup=500)
>>> backtest = Backtest(ttl_seconds=600, max_pending=100_000)
>>> alerts = [alert for event in simulate([traffic]) for alert in backtest.process(event)]
>>> alerts += backtest.finish()
>>> [(a.detector, a.signal, a.detected_at > traffic.truth.drift_start_time) for a in alerts]
[('page_hinkley', 'error_rate', True), ('adwin', 'error_rate', True)]
>>> model = backtest.summary().models["credit"]
>>> model.counts.predictions, model.counts.joined == traffic.truth.labels, model.bank.accuracy
(3000, True, 0.502)
>>> backtest.history
{}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from detectors.bank import BankSummary, DetectorBank
from detectors.config import DetectorConfig
from detectors.history import HistoryPoint
from detectors.join_buffer import JoinBuffer, JoinEntry
from pipeline.detect import DEFAULT_LATENESS_SECONDS, DetectProcessor
from pipeline.effects import Effects, Observation
from pipeline.join import JoinProcessor
from schemas.events import DriftAlert, LabelEvent, PredictionEvent


@dataclass(slots=True)
class ModelCounts:
    """One model's events in a replay (duplicates included in predictions and labels).

    ``joined`` counts outcomes, under the prediction's model; ``pending_*`` are the sides
    still waiting for their other half when the summary was taken.
    """

    predictions: int = 0
    labels: int = 0
    joined: int = 0
    duplicates: int = 0
    expired_predictions: int = 0
    orphan_labels: int = 0
    pending_predictions: int = 0
    pending_labels: int = 0
    late_observations: int = 0
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class ModelReport:
    """A model's counts and its bank's summary (``None`` for a model with labels only)."""

    counts: ModelCounts
    bank: BankSummary | None


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """The whole replay: per-model reports, every alert in order, and join evictions."""

    events: int
    evicted: int
    models: dict[str, ModelReport]
    alerts: list[DriftAlert]


class Backtest:
    """The live worker's processors over one in-memory join partition, fed one event at a time.

    Parameters
    ----------
    ttl_seconds, max_pending
        The join's event-time TTL and entry cap (``stream_app.settings.JoinSettings``).
    config
        Detectors per model (default: :class:`~detectors.config.BankConfig` defaults).
    history_every
        Record a model's :class:`~detectors.history.HistoryPoint` in ``history`` after every
        this many of its observations (0: no history).
    lateness_seconds
        How long each model's observations are held to be applied in event-time order
        (``worker.lateness_seconds``).
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_pending: int,
        config: DetectorConfig | None = None,
        history_every: int = 0,
        lateness_seconds: float = DEFAULT_LATENESS_SECONDS,
    ) -> None:
        if history_every < 0:
            raise ValueError("history_every must be >= 0")
        self.config = config or DetectorConfig()
        self.join = JoinProcessor(
            "predictions",
            ttl_seconds=ttl_seconds,
            max_pending=max_pending,
            max_future_seconds=float("inf"),  # a recording is replayed whatever its time
            forward=False,  # the observations go straight to the detection processor
        )
        self.detect = DetectProcessor(
            self.config,
            lateness_seconds=lateness_seconds,
            on_applied=self._record if history_every else None,
        )
        self.counts: dict[str, ModelCounts] = {}
        self.alerts: list[DriftAlert] = []
        self.events = 0
        self.history_every = history_every
        self.history: dict[str, list[HistoryPoint]] = {}
        self._effects = Effects()

    @property
    def buffer(self) -> JoinBuffer:
        """The one join buffer."""
        return self.join.buffer(0)

    @property
    def banks(self) -> dict[str, DetectorBank]:
        return self.detect.banks

    def process(self, event: PredictionEvent | LabelEvent) -> list[DriftAlert]:
        """Run one event through the worker's processors; the alerts it raised, in order."""
        return self.process_many((event,))

    def process_many(self, events: Iterable[PredictionEvent | LabelEvent]) -> list[DriftAlert]:
        """Run events through the worker's processors, each model's observations to its bank
        as one batch; the alerts they raised (by model, each model's in order)."""
        effects = self._effects
        for count, event in enumerate(events, start=1):
            self.events += 1
            self._counts(event.model_id)
            self.join.offer(event, 0, effects)
            for observation in effects.observations:
                self.detect.take(observation, 0, effects)
            effects.observations.clear()
            if self.history_every and count % self.history_every == 0:  # a point each, at most
                self.detect.publish_applied(effects)
        self.detect.publish_applied(effects)
        return self._take(effects)

    def finish(self) -> list[DriftAlert]:
        """Apply what the detection processor holds (the stream ended); the alerts raised."""
        self.detect.release_all(self._effects)
        return self._take(self._effects)

    def _take(self, effects: Effects) -> list[DriftAlert]:
        """Fold ``effects``' counts into the models' and keep its alerts; the alerts."""
        for (model_id, name, _source), n in effects.counts.items():
            if model_id is not None and (field := _COUNTED.get(name)) is not None:
                counts = self._counts(model_id)
                setattr(counts, field, getattr(counts, field) + n)
        alerts = list(effects.alerts)
        effects.clear()
        self.alerts += alerts
        return alerts

    def summary(self) -> BacktestSummary:
        """Counts, bank summaries and alerts (:meth:`finish` first; pending sides counted from
        the join)."""
        self.finish()
        counts = {model_id: replace(model) for model_id, model in self.counts.items()}
        for entry in self.buffer.store.values():
            _count_pending(counts, entry)
        models = {
            model_id: ModelReport(
                model, bank.summary() if (bank := self.banks.get(model_id)) else None
            )
            for model_id, model in sorted(counts.items())
        }
        return BacktestSummary(self.events, self.buffer.evicted, models, list(self.alerts))

    def _record(self, bank: DetectorBank, observations: list[Observation]) -> None:
        """Add a history point when a batch took ``bank`` past another ``history_every``
        observations."""
        every, seen = self.history_every, bank.predictions + bank.outcomes
        if every and seen // every > (seen - len(observations)) // every:
            point = HistoryPoint.of(bank.summary())
            if point is not None:
                self.history.setdefault(bank.model_id, []).append(point)

    def _counts(self, model_id: str) -> ModelCounts:
        counts = self.counts.get(model_id)
        if counts is None:
            counts = self.counts[model_id] = ModelCounts()
        return counts


_COUNTED = {
    "predictions": "predictions",
    "labels": "labels",
    "joined": "joined",
    "duplicate_predictions": "duplicates",
    "duplicate_labels": "duplicates",
    "expired_predictions": "expired_predictions",
    "orphan_labels": "orphan_labels",
    "late_observations": "late_observations",
    "alerts": "alerts",
}
"""The processors' model counters and the :class:`ModelCounts` field each adds to."""


def _count_pending(counts: dict[str, ModelCounts], entry: JoinEntry) -> None:
    if entry.prediction is not None:
        counts[entry.prediction.model_id].pending_predictions += 1
    elif entry.label is not None:
        counts[entry.label.model_id].pending_labels += 1
