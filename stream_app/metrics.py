"""Prometheus metrics of the stream worker, and the HTTP endpoint that serves them.

The worker records its live state through a :class:`~stream_app.live_sinks.FanOut` of the
Redis writer and :class:`MetricsLiveState`, the Prometheus side: each count, summary and alert
goes to both, from one call. Metric names (all
prefixed ``driftstream_``; docs/architecture.md has the list):

- per model: ``model_events_total{model,event}`` (the Redis counters: predictions, labels,
  joined, expired_predictions, orphan_labels, duplicates, alerts), ``alerts_total{model,signal,
  detector,kind,severity}``, gauges ``model_accuracy``, ``model_error_rate``,
  ``model_mean_absolute_error``, ``model_precision``, ``model_recall``, ``model_status`` (0 ok,
  1 warning, 2 drift), ``signal_estimate`` and ``signal_status`` ``{model,signal,kind}``,
  ``data_quality_problems{model,feature,problem}`` (a feature's count of each problem:
  missing, wrong_type, out_of_range, unseen_category);
- per process: ``pipeline_events_total{event}`` (deadlettered, evicted, offset_gaps, ...),
  ``consumed_messages_total{stage}``, ``stage_latency_seconds{stage}`` (Kafka record time to
  processing), ``alert_latency_seconds{kind}`` (event time to alert publish),
  ``consumer_lag{topic,partition}``, ``live_state_stale``, ``process_*``.

Hostile ids cannot break the endpoint: the client escapes label values, :func:`label_value`
makes them valid UTF-8 of bounded length, and :class:`CappedLabels` bounds their number. Past
``metrics_max_models`` models (or ``metrics_max_signals`` signals, or as many features, of one
model) counters go to the label ``_other`` (no real id starts with ``_``), gauges are not
exported, and each such update is counted in ``metric_labels_capped_total{label}`` (label
model, signal or feature).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from detectors.bank import BankSummary, Status
from detectors.sources import FIGURES
from schemas.events import DriftAlert
from stream_app.live_state.writer import WriterStats
from stream_app.settings import WorkerSettings

log = logging.getLogger(__name__)

OTHER = "_other"
"""The label of every model (or signal, or feature) past the cardinality cap."""
EMPTY = "_empty"
"""The label of an empty id (an empty label value would read as no label at all)."""

MAX_LABEL_LENGTH = 80
STATUS_VALUES: dict[Status, int] = {"ok": 0, "warning": 1, "drift": 2}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

Partition = tuple[str, int]
PerModel = Literal["signal", "feature"]
"""The labels capped per model."""


def label_value(text: str) -> str:
    """``text`` as valid UTF-8 of at most ``MAX_LABEL_LENGTH`` characters; a longer one keeps
    its start and a hash of the whole, so two long ids stay apart."""
    if not text:
        return EMPTY
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(safe) <= MAX_LABEL_LENGTH:
        return safe
    digest = hashlib.sha256(safe.encode()).hexdigest()[:12]
    return f"{safe[: MAX_LABEL_LENGTH - 13]}~{digest}"


class CappedLabels:
    """Label values for at most ``limit`` distinct ids, first come first served."""

    def __init__(self, limit: int, capped: Any) -> None:
        self.limit = limit
        self._capped = capped  # the counter child that counts refused updates
        self._labels: dict[str, str] = {}

    def get(self, value: str) -> str | None:
        """The label of ``value``, or None (counted) when it came past the cap."""
        label = self._labels.get(value)
        if label is None:
            if len(self._labels) >= self.limit:
                self._capped.inc()
                return None
            label = self._labels[value] = label_value(value)
        return label


class WorkerMetrics:
    """Every metric of one worker, in a registry of its own."""

    def __init__(self, max_models: int = 100, max_signals: int = 100) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        capped = Counter(
            "driftstream_metric_labels_capped",
            "Updates of a model, signal or feature past the label cap: counted under _other or "
            "dropped.",
            ["label"],
            registry=registry,
        )
        self.model_events = Counter(
            "driftstream_model_events",
            "Events per model (the counters of the Redis model hash).",
            ["model", "event"],
            registry=registry,
        )
        self.pipeline_events = Counter(
            "driftstream_pipeline_events",
            "Events of no model: dead-lettered, evicted from the join, Redis outages.",
            ["event"],
            registry=registry,
        )
        self.alerts = Counter(
            "driftstream_alerts",
            "Drift alerts published, by model, signal and detector.",
            ["model", "signal", "detector", "kind", "severity"],
            registry=registry,
        )
        self.consumed = Counter(
            "driftstream_consumed_messages",
            "Messages taken by each stage (join: predictions and labels; detect: observations).",
            ["stage"],
            registry=registry,
        )
        self.stage_latency = Histogram(
            "driftstream_stage_latency_seconds",
            "From a message's Kafka record time to the moment a stage takes it.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.alert_latency = Histogram(
            "driftstream_alert_latency_seconds",
            "From the event time an alert's evidence became known to the alert's publication.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
            return Gauge(f"driftstream_{name}", doc, labels, registry=registry)

        model = ("model",)
        self.accuracy = gauge("model_accuracy", "Accuracy over recent labelled outcomes.", model)
        self.error_rate = gauge("model_error_rate", "Error rate over recent outcomes.", model)
        self.mean_absolute_error = gauge(
            "model_mean_absolute_error", "Mean absolute error over recent outcomes.", model
        )
        self.status = gauge("model_status", "Model status: 0 ok, 1 warning, 2 drift.", model)
        self.estimated_accuracy = gauge(
            "model_estimated_accuracy",
            "Accuracy estimated from the scores of recent predictions, labelled or not.",
            model,
        )
        self.figures = {
            name: gauge(f"model_{name}", help_text, model)
            for name, help_text in FIGURES.items()
            if help_text is not None
        }
        """The signal sources' figures that have a help text (precision, ...), by name."""
        signal = ("model", "signal", "kind")
        self.signal_estimate = gauge(
            "signal_estimate",
            "Mean of a signal over its recent window (categorical: total variation distance of "
            "its recent shares from the reference).",
            signal,
        )
        self.signal_status = gauge(
            "signal_status", "Worst detector status of a signal: 0 ok, 1 warning, 2 drift.", signal
        )
        self.data_quality_problems = gauge(
            "data_quality_problems",
            "Predictions where a feature had the problem (missing, wrong_type, out_of_range, "
            "unseen_category), since the feature was first seen.",
            ("model", "feature", "problem"),
        )
        self.consumer_lag = gauge(
            "consumer_lag",
            "Messages of an input partition this worker has not read yet.",
            ("topic", "partition"),
        )
        self.assigned_partitions = gauge(
            "assigned_partitions",
            "Partitions of each topic the worker reads that are assigned to this worker (0 for "
            "every topic: it consumes nothing).",
            ("topic",),
        )
        self.live_state_stale = gauge(
            "live_state_stale", "1 while Redis is unreachable (the live view is stale).", ()
        )
        self._models = CappedLabels(max_models, capped.labels("model"))
        self._max_signals = max_signals
        self._capped: dict[PerModel, Any] = {
            "signal": capped.labels("signal"),
            "feature": capped.labels("feature"),
        }
        self._per_model: dict[tuple[PerModel, str], CappedLabels] = {}
        """Each model's capped labels of signals and of features, by (kind, model)."""
        self._lag_partitions: set[Partition] = set()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    @classmethod
    def from_settings(cls, worker: WorkerSettings) -> WorkerMetrics:
        return cls(worker.metrics_max_models, worker.metrics_max_signals)

    def count(self, model_id: str | None, event: str, n: int = 1) -> None:
        """Add ``n`` to an event counter of a model, or of the pipeline when model_id is None."""
        if model_id is None:
            self._child(self.pipeline_events, event).inc(n)
        else:
            model = self._models.get(model_id)
            self._child(self.model_events, OTHER if model is None else model, event).inc(n)

    def alert(self, alert: DriftAlert, published_at: datetime) -> None:
        """Count a published alert and how long after its evidence it went out."""
        model = self._models.get(alert.model_id)
        signal = None if model is None else self._label("signal", model, alert.signal)
        self.alerts.labels(
            OTHER if model is None else model,
            OTHER if signal is None else signal,
            label_value(alert.detector),
            alert.kind,
            alert.severity,
        ).inc()
        latency = (published_at - alert.detected_at).total_seconds()
        self.alert_latency.labels(alert.kind).observe(max(0.0, latency))

    def consumed_message(self, stage: str, record_time: float | None) -> None:
        """A stage took a message whose Kafka timestamp (seconds) is ``record_time``."""
        self.consumed_batch(stage, 1, record_time)

    def consumed_batch(self, stage: str, n: int, oldest_time: float | None) -> None:
        """A stage took ``n`` messages at once, the oldest with Kafka timestamp ``oldest_time``
        (seconds): one latency observation for the batch, its worst."""
        self._child(self.consumed, stage).inc(n)
        if oldest_time:
            self._child(self.stage_latency, stage).observe(max(0.0, time.time() - oldest_time))

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: per-message metrics called ``labels``
        for every message, 3% of the worker's CPU (bench.profile)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def set_summary(self, summary: BankSummary) -> None:
        """Refresh a model's gauges from its detector bank."""
        model = self._models.get(summary.model_id)
        if model is None:
            return
        for gauge, value in (
            (self.accuracy, summary.accuracy),
            (self.error_rate, summary.error_rate),
            (self.mean_absolute_error, summary.mean_absolute_error),
            (self.status, STATUS_VALUES[summary.status]),
            (self.estimated_accuracy, summary.estimated_accuracy),
            *((gauge, summary.figures.get(name)) for name, gauge in self.figures.items()),
        ):
            if value is None:
                gauge.remove(model)
            else:
                gauge.labels(model).set(value)
        for name, signal in summary.signals.items():
            if (label := self._label("signal", model, name)) is not None:
                labels = (model, label, signal.kind)
                self.signal_estimate.labels(*labels).set(signal.estimate)
                self.signal_status.labels(*labels).set(STATUS_VALUES[signal.status])
        for name, quality in summary.quality.items():
            if (feature := self._label("feature", model, name)) is not None:
                for problem, n in asdict(quality).items():
                    self.data_quality_problems.labels(model, feature, problem).set(n)

    def forget_model_gauges(self) -> None:
        """Drop every model's gauges (after a rebalance another worker may own the model)."""
        for gauge in (
            self.accuracy,
            self.error_rate,
            self.mean_absolute_error,
            self.estimated_accuracy,
            *self.figures.values(),
            self.status,
            self.signal_estimate,
            self.signal_status,
            self.data_quality_problems,
        ):
            gauge.clear()

    def set_consumer_lag(self, lag: Mapping[Partition, int]) -> None:
        """The lag of every input partition this worker holds; others disappear."""
        for topic, partition in self._lag_partitions - set(lag):
            self.consumer_lag.remove(topic, str(partition))
        for (topic, partition), behind in lag.items():
            self.consumer_lag.labels(topic, str(partition)).set(behind)
        self._lag_partitions = set(lag)

    def set_assigned(self, counts: Mapping[str, int]) -> None:
        """How many partitions of each topic it reads this worker holds."""
        for topic, n in counts.items():
            self.assigned_partitions.labels(topic).set(n)

    def _label(self, kind: PerModel, model: str, value: str) -> str | None:
        """The label of a model's signal or feature ``value``; None past the per-model cap."""
        labels = self._per_model.get((kind, model))
        if labels is None:
            labels = self._per_model[kind, model] = CappedLabels(
                self._max_signals, self._capped[kind]
            )
        return labels.get(value)


class MetricsLiveState:
    """The live state in Prometheus: a :class:`~stream_app.live_sinks.LiveSink` over
    :class:`WorkerMetrics`, next to the Redis writer in the worker's
    :class:`~stream_app.live_sinks.FanOut`. ``redis``: the writer whose outages
    ``live_state_stale`` shows (set at each flush, after the writer's)."""

    def __init__(self, metrics: WorkerMetrics, redis: WriterStats | None = None) -> None:
        self.metrics = metrics
        self.redis = redis
        self._reported: dict[tuple[str | None, str, str], int] = {}

    def count(self, model_id: str | None, name: str, n: int = 1) -> None:
        self.metrics.count(model_id, name, n)

    def set_totals(
        self, model_id: str | None, source: str, totals: dict[str, int], restored: bool = False
    ) -> None:
        """The totals' growth since the last call (``restored``: totals taken over from
        committed state, not new events: nothing counted)."""
        for name, n in totals.items():
            key = (model_id, source, name)
            if not restored and (delta := n - self._reported.get(key, 0)) > 0:
                self.metrics.count(model_id, name, delta)
            self._reported[key] = n

    def set_summary(self, summary: BankSummary, updated_at: datetime) -> None:
        self.metrics.set_summary(summary)

    def add_alert(self, alert: DriftAlert) -> None:
        self.metrics.alert(alert, published_at=datetime.now(UTC))

    async def flush(self) -> bool:
        if self.redis is not None:
            self.metrics.live_state_stale.set(self.redis.stale)
        return True


@contextmanager
def serving_metrics(registry: CollectorRegistry, worker: WorkerSettings) -> Iterator[None]:
    """Serve ``registry`` on ``http://metrics_host:metrics_port/metrics`` while the block runs
    (port 0: not at all).

    A port already taken is logged as an error and the worker runs on without the endpoint:
    Prometheus then sees the target down (the ``DriftstreamWorkerDown`` rule).
    """
    server = None
    host, port = worker.metrics_host, worker.metrics_port
    if port:
        try:
            server, _thread = start_http_server(port, host, registry)
        except OSError as exc:
            log.error("metrics endpoint not served on %s:%d: %s", host, port, exc)
        else:
            log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
