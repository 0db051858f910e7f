"""Where the worker's live state goes: one interface (:class:`LiveSink`), two destinations
(the Redis view, :class:`~stream_app.live_state.LiveStateWriter`, and Prometheus,
:class:`~stream_app.metrics.MetricsLiveState`), and :class:`FanOut`, which gives each call to
every one, so Redis and Prometheus show the same counts. Both runtimes get theirs from
:func:`open_live_state`. Adding a destination: docs/architecture.md, "How to extend".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import redis.asyncio

from detectors.bank import BankSummary
from schemas.events import DriftAlert
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.writer import LiveStateWriter
from stream_app.metrics import MetricsLiveState, WorkerMetrics
from stream_app.settings import Settings


class LiveSink(Protocol):
    """A destination of the live state: what both runtimes record, as it happens."""

    def count(self, model_id: str | None, name: str, n: int = 1) -> None:
        """Add ``n`` to a counter of a model (or of the pipeline: None)."""

    def set_totals(
        self, model_id: str | None, source: str, totals: dict[str, int], restored: bool = False
    ) -> None:
        """The exact totals of counters one source partition's committed state holds
        (``restored``: taken over from committed state, not new events)."""

    def set_summary(self, summary: BankSummary, updated_at: datetime) -> None:
        """A model's detector bank as it is now."""

    def add_alert(self, alert: DriftAlert) -> None:
        """An alert published."""

    async def flush(self) -> bool:
        """Send what is pending; False when the destination could not be reached."""
        ...


class FanOut:
    """Every call to each sink, in order."""

    def __init__(self, sinks: Sequence[LiveSink]) -> None:
        self.sinks = tuple(sinks)

    def count(self, model_id: str | None, name: str, n: int = 1) -> None:
        for sink in self.sinks:
            sink.count(model_id, name, n)

    def set_totals(
        self, model_id: str | None, source: str, totals: dict[str, int], restored: bool = False
    ) -> None:
        for sink in self.sinks:
            sink.set_totals(model_id, source, totals, restored=restored)

    def set_summary(self, summary: BankSummary, updated_at: datetime) -> None:
        for sink in self.sinks:
            sink.set_summary(summary, updated_at)

    def add_alert(self, alert: DriftAlert) -> None:
        for sink in self.sinks:
            sink.add_alert(alert)

    async def flush(self) -> bool:
        """Flush each in order; True when all were reached."""
        reached = [await sink.flush() for sink in self.sinks]
        return all(reached)


def live_state(writer: LiveStateWriter, metrics: WorkerMetrics) -> FanOut:
    """Redis, then Prometheus (which shows, after each flush, whether Redis was reached)."""
    return FanOut([writer, MetricsLiveState(metrics, redis=writer.stats)])


def open_live_state(settings: Settings, metrics: WorkerMetrics) -> FanOut:
    """The worker's live state: the Redis view of ``settings.redis`` (an asyncio client with
    1 s timeouts: a Redis away must not hold the worker) and ``metrics``."""
    client = redis.asyncio.Redis.from_url(
        settings.redis.url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        **settings.redis.client_kwargs(),
    )
    return live_state(LiveStateWriter(client, LiveStateKeys(settings.redis.key_prefix)), metrics)
