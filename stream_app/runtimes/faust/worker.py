"""The Faust runtime: the pipeline's processors as two faust-streaming agents.

1. **join** consumes ``predictions`` and ``labels`` (co-partitioned by request id) into the
   :class:`~pipeline.join.JoinProcessor`, whose entries live in the ``join`` table
   (changelog-backed, :mod:`stream_app.runtimes.faust.join_stage`).
2. **detect** consumes ``observations`` (keyed by model id) into the
   :class:`~pipeline.detect.DetectProcessor` and publishes each alert to ``alerts``
   (:mod:`stream_app.runtimes.faust.detect_stage`).

What the processors return is sent through Faust's topics and counted in the live view. The
guarantee is at-least-once delivery made idempotent: the join recognises an input record it
reads again after a crash by its position and repeats what it did, the detection processor
skips observations it has applied, and an alert already on the topic is not published again.
Faust's exactly-once mode is not used: it puts a message in the transaction of its
*destination* partition, not of the input offsets it came from, so it does not make this
two-stage topology atomic (the Kafka-native runtime does).

A timer flushes the live view to Redis once a second (:mod:`stream_app.live_state`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.exceptions import ConsumerNotStarted
from mode.utils.logging import level_number

from pipeline.effects import Effects, InputRecord
from schemas.events import DriftAlert
from stream_app.alerts_feed import recent_alerts
from stream_app.credential_watch import CredentialWatch
from stream_app.live_sinks import open_live_state
from stream_app.metrics import Partition, WorkerMetrics
from stream_app.processors import join_processor
from stream_app.runtimes.faust.app import create_app
from stream_app.runtimes.faust.detect_stage import DetectionStage, SaveOnCommit
from stream_app.runtimes.faust.join_stage import PartitionView
from stream_app.runtimes.faust.offset_watch import OffsetWatch
from stream_app.sampled_log import SampledLog
from stream_app.settings import Settings
from stream_app.topics import (
    Topics,
    app_id,
    ensure_topics,
    partition_counts,
    require_copartitioned,
)

log = logging.getLogger(__name__)

DETECT_BATCH_SECONDS = 0.05
"""How long the detect agent gathers observations into one batch (unless ``batch_size`` came
first): at most this much is added to an alert's latency."""

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def input_record(message: Any) -> InputRecord:
    """The pipeline's view of a Faust message."""
    return InputRecord(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        message.timestamp,
    )


def build_worker(settings: Settings, metrics: WorkerMetrics | None = None) -> faust.App:
    """The Faust app of ``driftstream worker --engine faust``: :func:`mount_agents` on an app
    of driftstream's settings."""
    group = app_id(settings)
    app = create_app(settings, group, settings.worker.data_dir)
    return mount_agents(app, settings, metrics)


def mount_agents(
    app: faust.App, settings: Settings, metrics: WorkerMetrics | None = None
) -> faust.App:
    """Add driftstream's two agents, their tables and the Redis flush timer to ``app`` (yours,
    or :func:`build_worker`'s); they record into ``metrics`` (Prometheus) as well as Redis.

    ``app`` must read with :class:`~stream_app.runtimes.faust.seek_fence.SeekFencedTransport`
    (``app.transport = SeekFencedTransport(app.conf.broker_consumer, app)``, as
    :func:`~stream_app.runtimes.faust.app.create_app` does), or a rebalance can skip records.
    """
    names = Topics(settings.topics.prefix)
    worker = settings.worker
    inputs = app.topic(names.predictions, names.labels, **RAW)
    partitions = settings.topics.partitions
    outputs = {
        "observations": app.topic(names.observations, partitions=partitions, **RAW),
        "alerts": app.topic(names.alerts, **RAW),
        "deadletter": app.topic(names.deadletter, **RAW),
    }
    join_table = app.Table("join", partitions=partitions, key_type=bytes, value_type=bytes)
    bank_table = app.Table("detectors", partitions=partitions, key_type=bytes, value_type=bytes)
    join = join_processor(
        settings,
        names.predictions,
        store_for=lambda partition: PartitionView(join_table, partition),
        redelivery=True,
    )
    detection = DetectionStage(
        bank_table, settings, lambda: recent_alerts(settings, worker.alerts_lookback)
    )
    app.sensors.add(SaveOnCommit(detection))
    input_topics = (names.predictions, names.labels, names.observations)
    metrics = metrics or WorkerMetrics.from_settings(worker)
    state = open_live_state(settings, metrics)
    dirty: set[str] = set()

    dead_letter_log = SampledLog(log, "dead-lettered")
    offsets = OffsetWatch()
    offset_log = SampledLog(log, "records out of offset order", level=logging.WARNING)

    def watch_order(record: InputRecord) -> None:
        """Count (and log) a record that does not follow the last one of its partition."""
        if (broken := offsets.see(record.topic, record.partition, record.offset)) is not None:
            state.count(None, broken)
            offset_log.record(record.source, broken)

    async def carry_out(effects: Effects) -> None:
        """Send the outputs through Faust and record the counts and alerts."""
        for letter in effects.dead_letters:
            dead_letter_log.record(letter.source, letter.reason)
        for output in effects.outputs:
            await outputs[output.stream].send(
                key=output.key, value=output.value, headers=output.headers
            )
        for (model_id, name, _source), n in effects.counts.items():
            state.count(model_id, name, n)
        for alert in effects.alerts:
            state.add_alert(alert)
        dirty.update(effects.changed_models)
        effects.clear()

    @app.agent(inputs)
    async def join_agent(stream: faust.StreamT[bytes]) -> None:
        effects = Effects()
        async for event in stream.events():
            record = input_record(event.message)
            watch_order(record)
            metrics.consumed_message("join", record.timestamp)
            join.process(record, effects, datetime.now(UTC))
            await carry_out(effects)

    @app.agent(outputs["observations"])
    async def detect_agent(stream: faust.StreamT[bytes]) -> None:
        """Observations in batches (what came within ``DETECT_BATCH_SECONDS``, at most
        ``worker.batch_size``), each model's through its bank at once; Faust acks a batch
        after it is processed."""
        effects = Effects()
        processor = detection.processor
        batches = cast("faust.Stream[bytes]", stream).take_events(  # not declared by StreamT
            worker.batch_size, within=DETECT_BATCH_SECONDS
        )
        async for events in batches:
            held = assigned_partitions(app, names.observations)
            for event in events:
                record = input_record(event.message)
                if record.partition not in held:  # revoked while buffered: the owner reads it
                    continue
                watch_order(record)
                metrics.consumed_message("detect", record.timestamp)
                processor.take_record(record, effects)
            fired: dict[int, list[DriftAlert]] = {}
            for alert in processor.apply(effects):
                fired.setdefault(processor.partitions[alert.model_id], []).append(alert)
            for partition, alerts in fired.items():
                new = await detection.unpublished(alerts, effects, partition)
                processor.publish(new, effects, partition)
            await carry_out(effects)

    async def flush_live_state() -> None:
        now = datetime.now(UTC)
        for model_id in dirty:
            if (model := detection.models.get(model_id)) is not None:
                state.set_summary(model.bank.summary(), updated_at=now)
        dirty.clear()
        metrics.set_consumer_lag(consumer_lag(app, input_topics))
        await state.flush()

    app.timer(interval=settings.worker.redis_flush_seconds)(flush_live_state)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def final_flush(_sender: faust.App, **_: Any) -> None:
        await flush_live_state()  # after the consumer stopped: nothing is counted later

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(_sender: faust.App, revoked: set[Any], **_: Any) -> None:
        join.revoke({tp.partition for tp in revoked if tp.topic == names.predictions})
        offsets.forget(revoked)
        detection.forget()  # restored from the detectors table if assigned again
        metrics.forget_model_gauges()

    return app


def assigned_partitions(app: Any, topic: str) -> set[int]:
    """The partitions of ``topic`` assigned to this worker now (none before it started)."""
    try:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
    except ConsumerNotStarted:
        return set()


def consumer_lag(app: Any, topics: set[str] | tuple[str, ...]) -> dict[Partition, int]:
    """Per assigned partition of ``topics``: the broker's high-water mark (as of the last fetch)
    minus the next offset the worker reads. Partitions not fetched or read yet are left out."""
    wanted = set(topics)
    read = app.monitor.tp_read_offsets
    lag: dict[Partition, int] = {}
    try:
        assignment = app.consumer.assignment()
    except ConsumerNotStarted:  # a worker that failed to start still flushes once
        return lag
    for tp in assignment:
        if tp.topic not in wanted or (last_read := read.get(tp)) is None:
            continue
        try:
            highwater = app.consumer.highwater(tp)
        except (AssertionError, AttributeError):  # revoked since assignment()
            continue
        if highwater is not None:
            lag[(tp.topic, tp.partition)] = max(0, highwater - last_read - 1)
    return lag


def run_faust_worker(settings: Settings, metrics: WorkerMetrics, loglevel: str = "info") -> None:
    """Run the Faust worker in the foreground until interrupted (Faust's own command line).

    Raises :class:`~stream_app.preflight.PreflightError` when Kafka refused its login while it ran.
    """
    from stream_app.metrics import serving_metrics

    names = ensure_topics(settings.kafka, settings.topics)
    counts = partition_counts(settings.kafka)
    require_copartitioned(
        {topic: counts[topic] for topic in (names.predictions, names.labels)},
        settings.topics.partitions,
        "the Faust runtime (it reads them as they are; the Kafka-native one repartitions them)",
    )
    app = build_worker(settings, metrics)
    watch = CredentialWatch(settings.kafka)
    app.timer(interval=settings.kafka.credential_check_seconds)(watch.check)

    @app.task  # type: ignore[untyped-decorator]
    async def restore_root_log_level() -> None:
        """Faust's worker sets the root logger to DEBUG so its startup spinner turns on every
        record; that makes every debug call of aiokafka build a record, 9% of the worker's CPU
        (bench.profile). Once running, the root logger gets the level asked for."""
        logging.root.setLevel(level_number(loglevel))

    # Faust's command line turns the web server on (port 6066) unless told not to
    sys.argv = ["driftstream", "worker", "--without-web", "--loglevel", loglevel]
    try:
        with serving_metrics(metrics.registry, settings.worker):
            app.main()
    finally:
        watch.raise_failure()  # Kafka refused our login: say so instead of exiting quietly
