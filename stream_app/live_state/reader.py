"""Reads of the live state: every model's view, a model's history and alerts (``client``
must decode responses)."""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from detectors.history import HistoryPoint
from schemas.codec import decode
from schemas.events import DriftAlert
from stream_app.live_state.keys import LiveStateKeys


def read_live_state(
    client: redis.Redis, keys: LiveStateKeys, model_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """The Redis view of every model (or one): its hash plus its decoded signals (under
    ``"signals"``) and quality counts (``"quality"``, by feature), and the pipeline counts
    under ``"_pipeline"`` when all models are asked for. ``client`` must decode responses."""

    def read_hash(key: str) -> dict[str, str]:
        return cast(dict[str, str], client.hgetall(key))

    model_ids = [model_id] if model_id else sorted(cast(set[str], client.smembers(keys.models)))
    view: dict[str, dict[str, Any]] = {}
    for mid in model_ids:
        model: dict[str, Any] = read_hash(keys.model(mid))
        signals = read_hash(keys.signals(mid))
        quality = read_hash(keys.quality(mid))
        if model or signals or quality:
            view[mid] = {
                **model,
                "signals": {k: json.loads(v) for k, v in signals.items()},
                "quality": {k: json.loads(v) for k, v in quality.items()},
            }
    if model_id is None:
        view["_pipeline"] = read_hash(keys.pipeline)
    return view


def read_history(client: redis.Redis, keys: LiveStateKeys, model_id: str) -> list[HistoryPoint]:
    """A model's history points in Redis, oldest first. ``client`` must decode responses."""
    return [
        HistoryPoint.from_json(fields["point"])
        for fields in _entries(client, keys.history(model_id))
    ]


def read_latest_point(
    client: redis.Redis, keys: LiveStateKeys, model_id: str
) -> HistoryPoint | None:
    """A model's latest history point in Redis (None before its first). ``client`` must
    decode responses."""
    entries = cast(
        list[tuple[str, dict[str, str]]], client.xrevrange(keys.history(model_id), count=1)
    )
    return HistoryPoint.from_json(entries[0][1]["point"]) if entries else None


def read_model_alerts(client: redis.Redis, keys: LiveStateKeys, model_id: str) -> list[DriftAlert]:
    """A model's alerts in Redis (the latest ``stream_length``), oldest first. ``client``
    must decode responses."""
    return [
        decode(DriftAlert, fields["alert"].encode())
        for fields in _entries(client, keys.model_alerts(model_id))
    ]


def _entries(client: redis.Redis, stream: str) -> list[dict[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange(stream))
    return [fields for _id, fields in entries]
