"""The Redis writer on a real Redis: batching, changes made mid-flush, Redis outages, and the
hashes of a summary (signals, data quality)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.client

from detectors.bank import DetectorBank
from detectors.config import BankConfig
from schemas.events import DriftAlert, WindowStats
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.reader import (
    read_history,
    read_latest_point,
    read_live_state,
    read_model_alerts,
)
from stream_app.live_state.writer import LiveStateWriter
from stream_app.settings import Settings
from tests.factories import prediction


def alert(model_id: str, n: int) -> DriftAlert:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return DriftAlert(
        alert_id=f"a{n}",
        model_id=model_id,
        model_version="1",
        signal="error_rate",
        detector="adwin",
        kind="concept",
        severity="critical",
        detected_at=now,
        event_time=now,
        before=WindowStats(mean=0.1, n=100),
        after=WindowStats(mean=0.4, n=50),
        incident_id="a1",
    )


def writer_for(settings: Settings, url: str | None = None) -> LiveStateWriter:
    client = redis.asyncio.Redis.from_url(url or settings.redis.url, socket_connect_timeout=1.0)
    return LiveStateWriter(client, LiveStateKeys(settings.redis.key_prefix))


def view(settings: Settings) -> dict[str, dict[str, Any]]:
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    with client:
        return read_live_state(client, LiveStateKeys(settings.redis.key_prefix))


def test_changes_made_during_a_flush_are_not_lost(
    settings: Settings, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerts_of_m = LiveStateKeys(settings.redis.key_prefix).model_alerts("m")

    async def scenario() -> None:
        sending, release = asyncio.Event(), asyncio.Event()
        execute = redis.asyncio.client.Pipeline.execute

        async def held(pipe: redis.asyncio.client.Pipeline, raise_on_error: bool = True) -> Any:
            sending.set()
            await release.wait()  # in flight until the test lets it go
            return await execute(pipe, raise_on_error)

        monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", held)
        writer = writer_for(settings)
        writer.count("m", "predictions", 5)
        in_flight = asyncio.create_task(writer.flush())
        await sending.wait()  # the flush has taken its batch and is sending it
        writer.count("m", "predictions", 2)
        writer.add_alert(alert("m", 1))
        assert not in_flight.done()
        release.set()
        assert await in_flight
        first = view(settings)["m"]  # the first batch: what was there when the flush began
        assert first["predictions"] == "5"
        assert "last_alert_id" not in first
        assert redis_conn.xlen(alerts_of_m) == 0
        assert await writer.flush()  # the changes made while it was in flight
        await writer.client.aclose()

    asyncio.run(scenario())
    state = view(settings)
    assert state["m"]["predictions"] == "7"
    assert state["m"]["last_alert_id"] == "a1"
    assert state["m"]["incident_id"] == "a1"
    assert redis_conn.xlen(alerts_of_m) == 1


def test_an_outage_makes_the_view_stale_and_it_catches_up(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    async def scenario() -> None:
        writer = writer_for(settings, url="redis://127.0.0.1:1/0")  # nothing listens there
        writer.count("m", "joined", 3)
        writer.count(None, "deadlettered")
        writer.add_alert(alert("m", 1))
        assert not await writer.flush()
        assert writer.stats.stale
        writer.count("m", "joined", 4)
        writer.set_model("m", {"status": "drift"})
        assert not await writer.flush()
        assert writer.stats.failed_flushes == 2
        await writer.client.aclose()
        writer.client = redis.asyncio.Redis.from_url(settings.redis.url)  # Redis is back
        assert await writer.flush()
        assert not writer.stats.stale
        await writer.client.aclose()

    asyncio.run(scenario())
    state = view(settings)
    assert state["m"]["joined"] == "7"
    assert state["m"]["status"] == "drift"
    assert state["_pipeline"] == {"deadlettered": "1"}
    assert redis_conn.xlen(f"{settings.redis.key_prefix}alerts") == 1


def test_each_summary_adds_a_history_point_and_outages_keep_the_latest(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    bank = DetectorBank("m")
    expected = []

    async def scenario() -> None:
        writer = writer_for(settings, url="redis://127.0.0.1:1/0")  # down at first
        writer.history_length = 3
        for second in range(5):
            bank.observe_prediction(prediction(f"r{second}", second, value=1))
            writer.set_summary(bank.summary(), updated_at=datetime.now(UTC))
            expected.append(bank.summary())
            assert not await writer.flush()
        await writer.client.aclose()
        writer.client = redis.asyncio.Redis.from_url(settings.redis.url)
        writer.add_alert(alert("m", 1))
        assert await writer.flush()
        await writer.client.aclose()

    asyncio.run(scenario())
    keys = LiveStateKeys(settings.redis.key_prefix)
    with redis.Redis.from_url(settings.redis.url, decode_responses=True) as client:
        points = read_history(client, keys, "m")
        latest = read_latest_point(client, keys, "m")
        assert read_latest_point(client, keys, "unknown") is None
        alerts = read_model_alerts(client, keys, "m")
    assert [p.event_time for p in points] == [s.event_time for s in expected[-3:]]
    assert [p.predictions for p in points] == [3, 4, 5]
    assert points[-1].signals == {
        name: signal.estimate for name, signal in expected[-1].signals.items()
    }
    assert alerts == [alert("m", 1)]
    assert latest == points[-1]
    assert redis_conn.xlen(keys.history("m")) == 3


def test_a_redis_that_lost_its_data_gets_it_again(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    async def scenario() -> None:
        writer = writer_for(settings)
        writer.count("m", "predictions", 5)
        writer.set_model("m", {"status": "drift"})
        assert await writer.flush()
        ours = list(redis_conn.scan_iter(match=f"{settings.redis.key_prefix}*"))
        redis_conn.delete(*ours)  # what a restart without persistence does to our keys
        writer.count("m", "predictions", 2)
        writer.set_model("m", {"status": "ok", "accuracy": "0.9"})
        assert await writer.flush()  # lands on the empty Redis, notices the loss
        assert await writer.flush()  # writes the rest again, not older than what it has sent
        await writer.client.aclose()

    asyncio.run(scenario())
    state = view(settings)
    assert state["m"]["predictions"] == "7"
    assert state["m"]["status"] == "ok"
    assert state["m"]["accuracy"] == "0.9"
    assert state["_pipeline"]["redis_rebuilds"] == "1"


def test_partition_totals_add_up_across_writers_and_survive_a_loss(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    async def scenario() -> None:
        one, two = writer_for(settings), writer_for(settings)  # two workers, two partitions each
        one.set_totals("m", "i0", {"predictions": 10, "joined": 4})
        one.set_totals("m", "i1", {"predictions": 5})
        two.set_totals("m", "i2", {"predictions": 7})
        two.set_totals(None, "i2", {"deadlettered": 3})
        assert await one.flush()
        assert await two.flush()
        one.set_totals("m", "i0", {"predictions": 12})  # a later commit: the new total
        assert await one.flush()
        ours = list(redis_conn.scan_iter(match=f"{settings.redis.key_prefix}*"))
        redis_conn.delete(*ours)
        for writer in (one, two):
            assert await writer.flush()  # an empty batch: nothing sent, nothing noticed
            writer.set_totals("m", "i3", {"predictions": 1})
            assert await writer.flush()  # notices the loss
            assert await writer.flush()  # writes its totals again
            await writer.client.aclose()

    asyncio.run(scenario())
    state = view(settings)
    assert state["m"]["predictions"] == str(12 + 5 + 7 + 1)  # i3 twice: the same total
    assert state["m"]["joined"] == "4"
    assert state["_pipeline"]["deadlettered"] == "3"


def test_quality_counts_round_trip_and_a_model_without_features_flushes(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    bank = DetectorBank("m", BankConfig(quality_reference=1))  # the first value is the reference
    for i, features in enumerate(
        [
            {"x": 1.0, "country": "NL"},
            {"x": 5.0, "country": "DE"},  # out of range, unseen
            {"x": None, "country": 3.0},  # missing, wrong type
            {"country": "NL"},  # missing (absent)
        ]
    ):
        bank.observe_prediction(prediction(f"r{i}", i).model_copy(update={"features": features}))
    bare = DetectorBank("bare")  # no features: no quality fields (an empty HSET is an error)
    bare.observe_prediction(prediction("b", model_id="bare").model_copy(update={"features": {}}))

    async def scenario() -> None:
        writer = writer_for(settings)
        writer.set_summary(bank.summary(), updated_at=datetime.now(UTC))
        writer.set_summary(bare.summary(), updated_at=datetime.now(UTC))
        assert await writer.flush()
        await writer.client.aclose()

    asyncio.run(scenario())
    state = view(settings)
    assert state["m"]["quality"] == {
        "x": {"missing": 2, "wrong_type": 0, "out_of_range": 1, "unseen_category": 0},
        "country": {"missing": 0, "wrong_type": 1, "out_of_range": 0, "unseen_category": 1},
    }
    assert set(state["m"]["signals"]) >= {"feature:x", "category:country", "missing:x"}
    assert state["bare"]["quality"] == {}
    assert state["bare"]["predictions_applied"] == "1"
