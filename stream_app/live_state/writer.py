"""The writer the workers record into: changes held in memory, sent in one pipeline a flush
(how it counts, survives an outage and rebuilds a lost Redis: :mod:`stream_app.live_state`)."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any, TypeVar

import redis.asyncio
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from detectors.bank import BankSummary
from detectors.history import HistoryPoint
from schemas.codec import encode
from schemas.events import DriftAlert
from stream_app.live_state.keys import LiveStateKeys

log = logging.getLogger(__name__)


SUM_SOURCES = """
local fields = redis.call('HGETALL', KEYS[1])
local totals = {}
for i = 1, #fields, 2 do
  local name = string.match(fields[i], '^(.+)/[^/]+$')
  if name then totals[name] = (totals[name] or 0) + tonumber(fields[i + 1]) end
end
for name, n in pairs(totals) do redis.call('HSET', KEYS[2], name, n) end
return 0
"""
"""Sets each counter of the hash ``KEYS[2]`` to the sum of its ``name/source`` fields in
``KEYS[1]``: the totals of every partition, whichever worker holds it."""


@dataclass
class WriterStats:
    flushes: int = 0
    failed_flushes: int = 0
    dropped_alerts: int = 0
    stale: bool = False


ModelFields = defaultdict[str, dict[FieldT, EncodableT]]
"""Fields of one kind of hash, per model id."""
Owner = TypeVar("Owner")


def _nested_dict() -> ModelFields:
    return defaultdict(dict)


def _copy(
    fields: defaultdict[Owner, dict[FieldT, EncodableT]],
) -> defaultdict[Owner, dict[FieldT, EncodableT]]:
    return defaultdict(dict, {m: dict(v) for m, v in fields.items()})


@dataclass
class PendingChanges:
    """What has not reached Redis yet: counter deltas, hash fields, history points, alerts."""

    counts: defaultdict[str | None, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    model: ModelFields = field(default_factory=_nested_dict)
    signals: ModelFields = field(default_factory=_nested_dict)
    quality: ModelFields = field(default_factory=_nested_dict)
    history: defaultdict[str, list[HistoryPoint]] = field(default_factory=lambda: defaultdict(list))
    alerts: list[DriftAlert] = field(default_factory=list)
    sourced: defaultdict[str | None, dict[FieldT, EncodableT]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    """Absolute counter totals per source partition (field ``name/source``)."""

    def __bool__(self) -> bool:
        return bool(
            self.counts or any(self.hashes()) or self.history or self.alerts or self.sourced
        )

    def hashes(self) -> tuple[ModelFields, ModelFields, ModelFields]:
        """The per-model hash fields: model, signals, quality (in that order)."""
        return self.model, self.signals, self.quality

    def absorb_older(self, older: PendingChanges) -> None:
        """Fold in changes made before these (newer field values win)."""
        for model_id, counts in older.counts.items():
            self.counts[model_id].update(counts)
        for newer, older_fields in zip(self.hashes(), older.hashes(), strict=True):
            for model_id, values in older_fields.items():
                newer[model_id] = {**values, **newer[model_id]}
        for source_of, totals in older.sourced.items():
            self.sourced[source_of] = {**totals, **self.sourced[source_of]}
        for model_id, points in older.history.items():
            self.history[model_id][:0] = points
        self.alerts[:0] = older.alerts

    def counts_and_fields(self) -> PendingChanges:
        """The counts and fields alone (what a Redis that lost its data can be given again)."""
        return PendingChanges(
            counts=defaultdict(Counter, {m: Counter(c) for m, c in self.counts.items()}),
            model=_copy(self.model),
            signals=_copy(self.signals),
            quality=_copy(self.quality),
            sourced=_copy(self.sourced),
        )


@dataclass
class LiveStateWriter:
    """Accumulates per-model changes and writes them to Redis in one pipeline per flush."""

    client: redis.asyncio.Redis
    keys: LiveStateKeys
    max_pending_alerts: int = 10_000
    stream_length: int = 1_000
    history_length: int = 3_600
    stats: WriterStats = field(default_factory=WriterStats)
    writer_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _pending: PendingChanges = field(default_factory=PendingChanges)
    _written: PendingChanges = field(default_factory=PendingChanges)
    """The counts and fields this writer has put in Redis (for a Redis that lost them)."""

    def count(self, model_id: str | None, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` of a model (predictions, labels, joined, ...), or
        of the pipeline as a whole when ``model_id`` is None (dead-lettered, evicted, ...)."""
        self._pending.counts[model_id][name] += n

    def set_totals(
        self, model_id: str | None, source: str, totals: dict[str, int], restored: bool = False
    ) -> None:
        """Set the exact totals of counters of a model (or of the pipeline, None) that one
        source partition's committed state holds; Redis sums them over partitions into the
        same counters ``count`` adds to. For a runtime whose counts are committed state.
        ``restored`` (totals taken over, not new events) changes nothing here: they are
        exact either way."""
        self._pending.sourced[model_id].update(
            {f"{name}/{source}": n for name, n in totals.items()}
        )

    def set_model(self, model_id: str, values: dict[str, Any]) -> None:
        """Overwrite fields of the model hash (status, accuracy, ...)."""
        self._pending.model[model_id].update({k: str(v) for k, v in values.items()})

    def set_summary(self, summary: BankSummary, updated_at: datetime) -> None:
        """Record a detector bank's live view: model status and rates, every signal, every
        feature's data-quality counts, and a point of its history."""
        rates = {
            "status": summary.status,
            "model_version": summary.model_version,
            "error_rate": summary.error_rate,
            "accuracy": summary.accuracy,
            "estimated_accuracy": summary.estimated_accuracy,  # from scores, labelled or not
            "mean_absolute_error": summary.mean_absolute_error,
            "last_alert_id": summary.last_alert_id,
            "incident_id": summary.incident_id,
            "predictions_applied": summary.predictions,  # each once, unlike the event counts
            "outcomes_applied": summary.outcomes,
            **summary.figures,  # the signal sources': precision, late_for_volume, ...
        }
        values = {name: value for name, value in rates.items() if value is not None}
        self.set_model(summary.model_id, {**values, "updated_at": updated_at.isoformat()})
        self._pending.signals[summary.model_id].update(
            {name: json.dumps(_fields(signal)) for name, signal in summary.signals.items()}
        )
        self._pending.quality[summary.model_id].update(
            {name: json.dumps(_fields(counts)) for name, counts in summary.quality.items()}
        )
        if (point := HistoryPoint.of(summary)) is not None:
            self._pending.history[summary.model_id].append(point)

    def add_alert(self, alert: DriftAlert) -> None:
        """Queue an alert for the streams."""
        self._pending.alerts.append(alert)
        latest = {"last_alert_id": alert.alert_id, "incident_id": alert.incident_id}
        if alert.explanation is not None:
            latest |= {
                "last_explained_alert_id": alert.alert_id,
                "last_explained_signal": alert.signal,
                "last_explanation": alert.explanation.model_dump_json(),
            }
        self.set_model(alert.model_id, {k: v for k, v in latest.items() if v is not None})

    async def flush(self) -> bool:
        """Send everything pending; on a Redis error keep it for the next flush and return False.

        Changes recorded while the pipeline is in flight go into a fresh batch, so none is lost
        whichever way the flush ends. Past ``max_pending_alerts`` queued alerts (a long outage)
        the oldest are dropped from the Redis streams and counted; they are on the alerts topic.
        History points queue up to ``history_length`` per model, as many as the stream keeps.
        """
        batch, self._pending = self._pending, PendingChanges()
        if not batch:
            return True
        try:
            results = await self._pipeline(batch).execute()
        except (redis.RedisError, OSError) as exc:
            self.stats.failed_flushes += 1
            if not self.stats.stale:
                log.warning("Redis unavailable, live state is stale until it returns: %s", exc)
            self.stats.stale = True
            self._pending.absorb_older(batch)
            excess = len(self._pending.alerts) - self.max_pending_alerts
            if excess > 0:
                del self._pending.alerts[:excess]
                self.stats.dropped_alerts += excess
            for points in self._pending.history.values():
                del points[: -self.history_length]
            return False
        if self.stats.stale:
            log.warning("Redis is back; live state caught up")
            self.count(None, "redis_outages")
        written = batch.counts_and_fields()
        lost = self._written
        written.absorb_older(lost)
        if results[0] is None and self.stats.flushes:  # our key is gone: so is what we wrote
            log.warning("Redis lost the live state; writing it again")
            self.count(None, "redis_rebuilds")
            # every field at its newest value (this batch's or older)
            again = written.counts_and_fields()
            again.counts = lost.counts  # and the counts sent before this batch, which are gone
            self._pending.absorb_older(again)
        self._written = written
        self.stats.stale = False
        self.stats.flushes += 1
        return True

    def _pipeline(self, batch: PendingChanges) -> Pipeline:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.writer(self.writer_id), 1, ex=86_400, get=True)
        models = {m for m in batch.counts if m is not None}
        models |= {m for fields in batch.hashes() for m in fields}
        models |= {m for m in batch.sourced if m is not None}
        if models:
            pipe.sadd(self.keys.models, *models)
        for model_id, counts in batch.counts.items():
            key = self.keys.pipeline if model_id is None else self.keys.model(model_id)
            for name, n in counts.items():
                pipe.hincrby(key, name, n)
        for model_id, totals in batch.sourced.items():
            sources = self.keys.sources(model_id)
            pipe.hset(sources, mapping=totals)
            target = self.keys.pipeline if model_id is None else self.keys.model(model_id)
            pipe.eval(SUM_SOURCES, 2, sources, target)
        hash_keys = (self.keys.model, self.keys.signals, self.keys.quality)
        for hash_key, fields in zip(hash_keys, batch.hashes(), strict=True):
            for model_id, values in fields.items():
                if values:  # HSET of no field is an error (a model without features)
                    pipe.hset(hash_key(model_id), mapping=values)
        for model_id, points in batch.history.items():
            for point in points:
                pipe.xadd(
                    self.keys.history(model_id),
                    {"point": point.to_json()},
                    maxlen=self.history_length,
                    approximate=True,
                )
        for alert in batch.alerts:
            entry: dict[FieldT, EncodableT] = {"alert": encode(alert)}
            for stream in (self.keys.alerts, self.keys.model_alerts(alert.model_id)):
                pipe.xadd(stream, entry, maxlen=self.stream_length, approximate=True)
        return pipe


def _fields(value: Any) -> dict[str, Any]:
    """A summary dataclass's fields by name: what ``dataclasses.asdict`` gives for these
    (their values are plain), without its recursive copies (a third of the time, measured;
    a thousand models' signals are written every flush)."""
    return {f.name: getattr(value, f.name) for f in dataclass_fields(value)}
