"""What the Kafka-native worker shows: only committed state reaches Redis and Prometheus.

After each commit the counters of the partitions that changed are written as exact
per-partition totals (Redis sums them over partitions: a partition restored elsewhere goes on
from the same totals), with the alerts the commit published and, at the next flush, the
summaries of the models whose state changed (as many as ``SUMMARY_SECONDS`` allows per flush,
the longest waiting first: with thousands of models a summary of each at every flush would
take most of the worker's time); the consumer lag and the assigned partitions go to
Prometheus; a worker that reads nothing says why.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, TopicPartition

from pipeline.detect import DetectProcessor
from stream_app.live_sinks import open_live_state
from stream_app.metrics import WorkerMetrics
from stream_app.runtimes.kafka.checkpoint import Committed
from stream_app.runtimes.kafka.clients import Layout
from stream_app.settings import Settings

log = logging.getLogger(__name__)

SUMMARY_SECONDS = 0.05
"""The longest a flush spends on models' summaries; the models left wait for the next."""


class LiveStateFeed:
    """The worker's Redis live state and metrics (loop thread only)."""

    def __init__(
        self, settings: Settings, metrics: WorkerMetrics, consumer: Consumer, layout: Layout
    ) -> None:
        self.metrics = metrics
        self.consumer = consumer
        self.layout = layout
        self.state = open_live_state(settings, metrics)
        self.summaries_due: dict[str, None] = {}  # in the order they became due

    def count(self, name: str, n: int) -> None:
        """A pipeline counter (``unreadable_topic``, ``stuck_commits``)."""
        if n:
            self.state.count(None, name, n)

    def publish(self, batches: list[Committed]) -> None:
        """What commits made durable: alerts, exact totals, the models to summarise next."""
        for batch in batches:
            for alert in batch.alerts:
                self.state.add_alert(alert)
            for source, totals in batch.totals.items():
                by_model: dict[str | None, dict[str, int]] = {}
                for (model_id, name), n in totals.items():
                    by_model.setdefault(model_id, {})[name] = n
                for model_id, named in by_model.items():
                    self.state.set_totals(model_id, str(source), named, restored=batch.restored)
            self.summaries_due.update(dict.fromkeys(batch.models))

    def refresh(
        self,
        detect: DetectProcessor,
        assigned: set[tuple[str, int]],
        seconds: float = SUMMARY_SECONDS,
    ) -> None:
        """Before a flush: the summaries due (for up to ``seconds``), the lag, the assigned
        partitions."""
        now, due = datetime.now(UTC), self.summaries_due
        deadline = time.monotonic() + seconds
        while due and time.monotonic() < deadline:
            model_id = next(iter(due))
            del due[model_id]
            if (model := detect.models.get(model_id)) is not None:
                self.state.set_summary(model.bank.summary(), updated_at=now)
        self.metrics.set_consumer_lag(self.lag(assigned))
        topics = Counter(topic for topic, _partition in assigned)
        self.metrics.set_assigned({topic: topics[topic] for topic in self.layout.reading})

    def lag(self, assigned: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        lag: dict[tuple[str, int], int] = {}
        for topic, partition in assigned:
            tp = TopicPartition(topic, partition)
            try:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                (position,) = self.consumer.position([tp])
            except KafkaException:
                continue
            if high >= 0 and position.offset >= 0:
                lag[(topic, partition)] = max(0, high - position.offset)
            elif high >= 0 and high == low:  # nothing in it (a repartition topic, one worker)
                lag[(topic, partition)] = 0
        return lag

    def warn_idle(self, seconds: float, assigned: set[tuple[str, int]]) -> None:
        """Nothing read for ``seconds``: say why it may be."""
        names = self.layout.names
        if not assigned:
            log.warning(
                "no partition assigned for %.0fs: group %s gives this worker nothing to read "
                "(more workers than partitions, or its topics are missing)",
                seconds,
                self.layout.app_id,
            )
        else:
            log.warning(
                "no record read for %.0fs from %d assigned partitions (lag %d): is anything "
                "producing to %s and %s?",
                seconds,
                len(assigned),
                sum(self.lag(assigned).values()),
                names.predictions,
                names.labels,
            )

    async def flush(self) -> bool:
        return await self.state.flush()
