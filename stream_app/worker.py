"""The Faust worker: join predictions with labels, detect drift per model, alert, keep state.

Two agents over the pure core (``detectors/``):

1. **join** consumes ``predictions`` and ``labels`` (co-partitioned by request id). Each event is
   decoded at the edge; anything invalid goes to ``deadletter`` with its reason and the stream
   goes on. A valid prediction is forwarded to ``observations`` (data-drift signals) and both
   sides go through the partition's :class:`~detectors.join.JoinBuffer`, whose entries live in
   the ``join`` table (changelog-backed). A match is forwarded to ``observations`` once.
2. **detect** consumes ``observations`` (keyed by model id) into one
   :class:`~detectors.bank.DetectorBank` per model and publishes each alert to ``alerts``
   (:mod:`stream_app.detect_stage`: each observation applied once, state saved at every offset
   commit, no alert published twice).

The guarantee is at-least-once delivery made idempotent: the join recognises an input event it
reads again after a crash by its position (topic/partition/offset) and repeats what it did,
and the detection stage skips observations it has applied. Faust's exactly-once mode is not
used: it puts a message in the transaction of its *destination* partition, not of the input
offsets it came from, so it does not make this two-stage topology atomic.

A timer flushes the live view to Redis once a second (:mod:`stream_app.live_state`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
import redis.asyncio
from mode.utils.logging import level_number

from detectors.config import DetectorConfig
from detectors.join import expired_side
from schemas.codec import decode, encode
from schemas.errors import InvalidEvent
from schemas.events import LabelEvent, PredictionEvent
from stream_app.alerts_feed import recent_alerts
from stream_app.credential_watch import CredentialWatch
from stream_app.dead_letters import dead_letter_record
from stream_app.detect_stage import DetectionStage, SaveOnCommit
from stream_app.faust_app import create_app
from stream_app.join_stage import PartitionedJoin
from stream_app.live_state import LiveStateKeys
from stream_app.metrics import MeteredLiveState, WorkerMetrics, consumer_lag, serving_metrics
from stream_app.observations import decode_observation, encode_observation
from stream_app.offset_watch import OffsetWatch
from stream_app.sampled_log import SampledLog
from stream_app.settings import Settings
from stream_app.topics import Topics

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def build_worker(settings: Settings, metrics: WorkerMetrics | None = None) -> faust.App:
    """The Faust app with both agents, its tables and the Redis flush timer; it records into
    ``metrics`` (Prometheus) as well as Redis."""
    names = Topics(settings.topics.prefix)
    worker = settings.worker
    app = create_app(settings, worker.app_id or f"{names.prefix}worker", worker.data_dir)
    inputs = app.topic(names.predictions, names.labels, **RAW)
    partitions = settings.topics.partitions
    observations = app.topic(names.observations, partitions=partitions, **RAW)
    alerts = app.topic(names.alerts, **RAW)
    deadletter = app.topic(names.deadletter, **RAW)
    join_table = app.Table("join", partitions=partitions, key_type=bytes, value_type=bytes)
    bank_table = app.Table("detectors", partitions=partitions, key_type=bytes, value_type=bytes)
    joins = PartitionedJoin(join_table, settings.join)
    detection = DetectionStage(
        bank_table,
        DetectorConfig.from_settings(settings.detectors),
        worker.dedupe_window,
        lambda: recent_alerts(settings, worker.alerts_lookback),
    )
    app.sensors.add(SaveOnCommit(detection))
    client = redis.asyncio.Redis.from_url(
        settings.redis.url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        **settings.redis.client_kwargs(),
    )
    input_topics = (names.predictions, names.labels, names.observations)
    metrics = metrics or WorkerMetrics.from_settings(worker)
    state = MeteredLiveState(client, LiveStateKeys(settings.redis.key_prefix), metrics=metrics)
    dirty: set[str] = set()

    dead_letter_log = SampledLog(log, "dead-lettered")
    offsets = OffsetWatch()
    offset_log = SampledLog(log, "records out of offset order", level=logging.WARNING)

    def watch_order(message: Any) -> None:
        """Count (and log) a record that does not follow the last one of its partition."""
        if (broken := offsets.see(message.topic, message.partition, message.offset)) is not None:
            state.count(None, broken)
            offset_log.record(f"{message.topic}/{message.partition}/{message.offset}", broken)

    async def dead_letter(message: Any, reason: str) -> None:
        """Send a message we cannot use to the dead-letter topic, as it came (cut if over
        512 KiB), with the reason."""
        source = f"{message.topic}/{message.partition}/{message.offset}"
        state.count(None, "deadlettered")
        dead_letter_log.record(source, reason)  # one line per 10 s, however many
        record = dead_letter_record(message.key, message.value, reason, source)
        await deadletter.send(key=record.key, value=record.value, headers=record.headers)

    @app.agent(inputs)
    async def join(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            watch_order(message)
            metrics.consumed_message("join", message.timestamp)
            try:
                is_prediction = message.topic == names.predictions
                parsed = _parse_input(is_prediction, message.key, message.value)
                _check_not_future(parsed, settings.join.max_future_seconds)
            except InvalidEvent as exc:
                await dead_letter(message, exc.reason)
                continue
            model_id = parsed.model_id
            kind = "predictions" if isinstance(parsed, PredictionEvent) else "labels"
            state.count(model_id, kind)
            buffer = joins.buffer(message.partition)
            position = f"{kind[0]}{message.partition}:{message.offset}"
            step = buffer.offer(parsed, position)
            if step.note == "duplicate":
                state.count(model_id, f"duplicate_{kind}")
            elif isinstance(parsed, PredictionEvent):  # once per request, for the data signals
                await observations.send(key=model_id.encode(), value=encode_observation(parsed))
            if (outcome := step.outcome) is not None:  # routed by the prediction's model
                state.count(outcome.model_id, "joined")
                await observations.send(
                    key=outcome.model_id.encode(), value=encode_observation(outcome)
                )
            for _request_id, entry in buffer.expire():
                state.count(*expired_side(entry))

    @app.agent(observations)
    async def detect(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            watch_order(event.message)
            key, model_id = event.message.key, event.message.key.decode()
            metrics.consumed_message("detect", event.message.timestamp)
            try:  # only our join stage writes here, but a topic is open to anyone with access
                observation = decode_observation(event.message.value)
                if observation.model_id != model_id:
                    raise ValueError(f"keyed {model_id!r} but of model {observation.model_id!r}")
                fired = detection.observe(event.message.partition, observation)
            except ValueError as exc:
                await dead_letter(event.message, f"observation: {exc}".splitlines()[0])
                continue
            for alert in await detection.unpublished(fired):
                await alerts.send(key=key, value=encode(alert))
                state.add_alert(alert)
                state.count(model_id, "alerts")
            dirty.add(model_id)

    async def flush_live_state() -> None:
        now = datetime.now(UTC)
        for model_id in dirty:
            if (model := detection.models.get(model_id)) is not None:
                state.set_summary(model.bank.summary(), updated_at=now)
        dirty.clear()
        state.count(None, "evicted", joins.take_evicted())
        for name, n in detection.take_counts().items():
            state.count(None, name, n)
        metrics.set_consumer_lag(consumer_lag(app, input_topics))
        await state.flush()

    app.timer(interval=settings.worker.redis_flush_seconds)(flush_live_state)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def final_flush(_sender: faust.App, **_: Any) -> None:
        await flush_live_state()  # after the consumer stopped: nothing is counted later

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(_sender: faust.App, revoked: set[Any], **_: Any) -> None:
        joins.forget({tp.partition for tp in revoked if tp.topic == names.predictions})
        offsets.forget(revoked)
        detection.forget()  # restored from the detectors table if assigned again
        metrics.forget_model_gauges()

    return app


def _parse_input(
    is_prediction: bool, key: bytes | None, value: bytes | None
) -> PredictionEvent | LabelEvent:
    """Decode one input message, checking that it is keyed by its request id."""
    model = PredictionEvent if is_prediction else LabelEvent
    if value is None:
        raise InvalidEvent(f"{model.__name__}: message has no value")
    parsed = decode(PredictionEvent, value) if is_prediction else decode(LabelEvent, value)
    if key is None:
        raise InvalidEvent(f"{model.__name__}: message has no key; key it by request_id")
    if key != parsed.request_id.encode():
        raise InvalidEvent(
            f"{model.__name__}.request_id: {parsed.request_id!r} does not match the message key"
        )
    return parsed


def _check_not_future(event: PredictionEvent | LabelEvent, max_future_seconds: float) -> None:
    ahead = (event.timestamp - datetime.now(UTC)).total_seconds()
    if ahead > max_future_seconds:
        raise InvalidEvent(
            f"{type(event).__name__}.timestamp: {event.timestamp.isoformat()} is {ahead:.0f}s "
            f"ahead of this worker's clock (at most {max_future_seconds:.0f}s allowed)"
        )


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until interrupted (Faust's own command line);
    ``loglevel`` is crit, error, warn, info or debug.

    Raises :class:`~stream_app.preflight.PreflightError` when Kafka refused its login while it ran.
    """
    import sys

    metrics = WorkerMetrics.from_settings(settings.worker)
    app = build_worker(settings, metrics)
    watch = CredentialWatch(settings.kafka).install(app)

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
