"""A seeded generator of malformed and hostile input messages, by category, for the fuzz test.

Every message it makes must be rejected at the worker's edge (dead-lettered), so each category
is a way in which a message breaks the contract of :mod:`schemas.events`: bad JSON, wrong types,
oversized strings and bodies, deep nesting, invalid UTF-8, NaN, a missing or disagreeing key,
unknown schema versions, hostile model ids and feature names.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import MAX_EVENT_BYTES

HOSTILE_PARTS = ["*", "a\r\nb", "{x}", "?", "[0]", "\x00", "\u00e9", "\\", "$(id)", "x" * 129]
"""Pieces that put a model id or a feature name outside the contract (and would be trouble in
a Redis key or pattern); model ids also may not hold ``:``, ``/``, spaces or start with ``.``."""
HOSTILE_MODEL_PARTS = [*HOSTILE_PARTS, ":", "/../", " ", "..", "model:x:signals"]


PER_ROUND = 100
"""How often each category comes in a round of messages, except the big ones below."""
BIG_PER_ROUND = {"oversized_body": 1, "huge_string": 10, "deep_nesting": 10}
"""Big messages (oversized ones are over 64 KiB each) are fewer, to keep the volume sane."""


@dataclass(frozen=True)
class HostileMessage:
    category: str
    is_prediction: bool
    key: bytes | None
    value: bytes | None


def _prediction(request_id: str, now: datetime) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "request_id": request_id,
        "model_id": "fuzz",
        "model_version": "1",
        "timestamp": now.isoformat(),
        "features": {"x": 1.5, "city": "a"},
        "prediction": 1,
        "score": 0.5,
    }


def _label(request_id: str, now: datetime) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "request_id": request_id,
        "model_id": "fuzz",
        "timestamp": now.isoformat(),
        "label": 1,
    }


class HostileGenerator:
    """``messages(n)`` yields ``n`` hostile messages, the same ones for the same seed."""

    def __init__(self, seed: int, marker: str, now: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.marker = marker  # in every hostile name, so a test can look for it in Redis keys
        self.now = now or datetime.now(UTC)
        self.makers: dict[str, Callable[[str, dict[str, Any]], bytes | None]] = {
            "bad_json": self._bad_json,
            "wrong_type": self._wrong_type,
            "huge_string": self._huge_string,
            "oversized_body": self._oversized_body,
            "deep_nesting": self._deep_nesting,
            "invalid_utf8": self._invalid_utf8,
            "nan": self._nan,
            "unknown_schema_version": self._unknown_version,
            "hostile_model_id": self._hostile_model_id,
            "hostile_feature_name": self._hostile_feature_name,
            "future_timestamp": self._future,
            "not_an_object": self._not_an_object,
            "no_value": lambda _rid, _body: None,
            "empty_key": self._encoded,
            "no_key": self._encoded,
            "key_mismatch": self._encoded,
        }

    def messages(self, n: int) -> Iterator[HostileMessage]:
        rounds = [c for c in self.makers for _ in range(BIG_PER_ROUND.get(c, PER_ROUND))]
        for i in range(n):
            category = rounds[i % len(rounds)]
            is_prediction = self.rng.random() < 0.5
            request_id = f"bad-{self.marker}-{i}"
            body = (_prediction if is_prediction else _label)(request_id, self.now)
            value = self.makers[category](request_id, body)
            key: bytes | None = request_id.encode()
            if category == "empty_key":
                key = b""
            elif category == "no_key":
                key = None
            elif category == "key_mismatch":
                key = f"other-{i}".encode()
            yield HostileMessage(category, is_prediction, key, value)

    def _encoded(self, _request_id: str, body: dict[str, Any]) -> bytes:
        return json.dumps(body).encode()

    def _bad_json(self, _request_id: str, body: dict[str, Any]) -> bytes:
        text = json.dumps(body)
        return self.rng.choice(
            [
                text[: self.rng.randrange(1, len(text) - 1)].encode(),  # truncated
                text.replace('"', "'").encode(),
                b"{not json",
                bytes(self.rng.randrange(32, 127) for _ in range(self.rng.randrange(1, 64))),
                text.encode() + b"}",
                b"",
            ]
        )

    def _wrong_type(self, _request_id: str, body: dict[str, Any]) -> bytes:
        field = self.rng.choice(["request_id", "model_id", "timestamp", "prediction", "label"])
        if field in ("prediction", "label"):
            field = "prediction" if "prediction" in body else "label"
        body[field] = self.rng.choice([True, None, [], {}, [1, 2], {"a": 1}, False])
        if "features" in body and self.rng.random() < 0.5:
            body.pop(field)
            body["features"] = self.rng.choice([[1, 2], "x", 3, {"x": [1]}, {"x": True}])
        return json.dumps(body).encode()

    def _huge_string(self, _request_id: str, body: dict[str, Any]) -> bytes:
        field = self.rng.choice(["request_id", "model_id", "timestamp"])
        body[field] = "A" * self.rng.randrange(200, 20_000)
        return json.dumps(body).encode()

    def _oversized_body(self, _request_id: str, body: dict[str, Any]) -> bytes:
        size = MAX_EVENT_BYTES + self.rng.randrange(1, 8_192)
        body["padding"] = "p" * size
        return json.dumps(body).encode()

    def _deep_nesting(self, _request_id: str, body: dict[str, Any]) -> bytes:
        depth = self.rng.randrange(100, 5_000)
        field = "prediction" if "prediction" in body else "label"
        text = json.dumps({k: v for k, v in body.items() if k != field})
        return (text[:-1] + f', "{field}": ' + "[" * depth + "]" * depth + "}").encode()

    def _invalid_utf8(self, request_id: str, body: dict[str, Any]) -> bytes:
        text = json.dumps(body).encode()
        return text.replace(request_id.encode(), request_id.encode() + b"\xff\xfe\xc3", 1)

    def _nan(self, _request_id: str, body: dict[str, Any]) -> bytes:
        token = self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999"])
        field = "score" if "score" in body else "label"
        return json.dumps(body).replace(f'"{field}": ', f'"{field}": {token}, "_": ', 1).encode()

    def _unknown_version(self, _request_id: str, body: dict[str, Any]) -> bytes:
        body["schema_version"] = self.rng.choice([0, 2, 99, "1", None, 1.5, -1])
        return json.dumps(body).encode()

    def _hostile_model_id(self, request_id: str, body: dict[str, Any]) -> bytes:
        part = self.rng.choice(HOSTILE_MODEL_PARTS)
        body["model_id"] = f"{part}{self.marker}" if part == ".." else f"{self.marker}{part}"
        return json.dumps(body).encode()

    def _hostile_feature_name(self, request_id: str, body: dict[str, Any]) -> bytes:
        if "features" not in body:  # a label has no features: a hostile model id instead
            return self._hostile_model_id(request_id, body)
        body["features"] = {f"{self.marker}{self.rng.choice(HOSTILE_PARTS)}": 1.0}
        return json.dumps(body).encode()

    def _future(self, _request_id: str, body: dict[str, Any]) -> bytes:
        ahead = timedelta(days=self.rng.randrange(1, 3_000))
        body["timestamp"] = (self.now + ahead).isoformat()
        return json.dumps(body).encode()

    def _not_an_object(self, _request_id: str, _body: dict[str, Any]) -> bytes:
        return self.rng.choice([b"null", b"[]", b"42", b'"text"', b"true", b"{}", b"  "])
