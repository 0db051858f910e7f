"""Where live state goes: the fan-out gives every call to Redis and to Prometheus alike."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from typing import Any

from prometheus_client import generate_latest

from detectors.bank import DetectorBank
from schemas.events import DriftAlert
from stream_app.live_sinks import FanOut, LiveSink, live_state
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.writer import LiveStateWriter
from stream_app.metrics import MetricsLiveState, WorkerMetrics
from tests.event_examples import ALERT
from tests.factories import prediction
from tests.monitoring import samples

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SINK_METHODS = sorted(
    name for name, _ in inspect.getmembers(LiveSink, inspect.isfunction) if not name.startswith("_")
)


class Recorder:
    """A sink that records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def count(self, model_id: str | None, name: str, n: int = 1) -> None:
        self.calls.append(("count", (model_id, name, n)))

    def set_totals(
        self, model_id: str | None, source: str, totals: dict[str, int], restored: bool = False
    ) -> None:
        self.calls.append(("set_totals", (model_id, source, totals, restored)))

    def set_summary(self, summary: Any, updated_at: datetime) -> None:
        self.calls.append(("set_summary", (summary, updated_at)))

    def add_alert(self, alert: DriftAlert) -> None:
        self.calls.append(("add_alert", (alert,)))

    async def flush(self) -> bool:
        self.calls.append(("flush", ()))
        return True


def writer() -> LiveStateWriter:
    return LiveStateWriter(client=None, keys=LiveStateKeys("t:"))  # type: ignore[arg-type]


def prometheus(metrics: WorkerMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return samples(generate_latest(metrics.registry).decode(), name)


def test_the_fan_out_gives_every_call_of_the_interface_to_each_sink() -> None:
    assert SINK_METHODS == ["add_alert", "count", "flush", "set_summary", "set_totals"]
    first, second = Recorder(), Recorder()
    fan_out = FanOut([first, second])
    summary = DetectorBank("m").summary()
    alert = DriftAlert.model_validate(ALERT)
    fan_out.count("m", "predictions", 2)
    fan_out.set_totals(None, "i3", {"deadlettered": 4}, restored=True)
    fan_out.set_summary(summary, T0)
    fan_out.add_alert(alert)
    assert asyncio.run(fan_out.flush())
    assert (
        first.calls
        == second.calls
        == [
            ("count", ("m", "predictions", 2)),
            ("set_totals", (None, "i3", {"deadlettered": 4}, True)),
            ("set_summary", (summary, T0)),
            ("add_alert", (alert,)),
            ("flush", ()),
        ]
    )
    assert sorted({name for name, _ in first.calls}) == SINK_METHODS


def test_redis_and_prometheus_get_the_same_counts() -> None:
    redis, metrics = writer(), WorkerMetrics()
    state = live_state(redis, metrics)
    state.count("m", "predictions", 3)
    state.count(None, "deadlettered")
    state.set_totals("m", "i0", {"joined": 5})
    state.set_totals("m", "i0", {"joined": 7})  # grew by 2
    state.set_totals("m", "i1", {"joined": 9}, restored=True)  # taken over: no new events
    assert redis._pending.counts == {"m": {"predictions": 3}, None: {"deadlettered": 1}}
    assert redis._pending.sourced["m"] == {"joined/i0": 7, "joined/i1": 9}
    events = prometheus(metrics, "driftstream_model_events_total")
    assert events[(("event", "predictions"), ("model", "m"))] == 3
    assert events[(("event", "joined"), ("model", "m"))] == 7
    pipeline = prometheus(metrics, "driftstream_pipeline_events_total")
    assert pipeline[(("event", "deadlettered"),)] == 1


def test_summaries_and_alerts_reach_both() -> None:
    redis, metrics = writer(), WorkerMetrics()
    state = live_state(redis, metrics)
    bank = DetectorBank("m")
    bank.observe_prediction(prediction("r0"))
    state.set_summary(bank.summary(), T0)
    state.add_alert(DriftAlert.model_validate(ALERT))
    assert redis._pending.model["m"]["updated_at"] == T0.isoformat()
    assert prometheus(metrics, "driftstream_model_status")[(("model", "m"),)] == 0
    assert [a.alert_id for a in redis._pending.alerts] == [ALERT["alert_id"]]
    assert sum(prometheus(metrics, "driftstream_alerts_total").values()) == 1


def test_prometheus_shows_whether_redis_was_reached_at_the_last_flush() -> None:
    redis, metrics = writer(), WorkerMetrics()
    prom = MetricsLiveState(metrics, redis=redis.stats)
    stale = "driftstream_live_state_stale"
    redis.stats.stale = True
    assert asyncio.run(prom.flush())
    assert prometheus(metrics, stale)[()] == 1
    redis.stats.stale = False
    asyncio.run(prom.flush())
    assert prometheus(metrics, stale)[()] == 0
