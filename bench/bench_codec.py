"""Micro-benchmark of the event codec: events/s to parse+validate and to serialize.

Every approach runs side by side in one process on the same events and is checked for giving
the same results as ``schemas.codec`` (same values out, same inputs rejected): a faster codec
that changes what is accepted is not a candidate. The table goes to stdout and to the
"## Event codec" section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.bench_codec
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
import orjson

from bench.results import best_rates, machine, parser, publish, table, written
from schemas.codec import decode, encode
from schemas.events import Event, LabelEvent, PredictionEvent

SECTION = "## Event codec"
COMMAND = ".venv/bin/python -m bench.bench_codec"
LIBRARIES = ("pydantic", "pydantic-core", "orjson", "msgspec")
BASELINE = "(baseline)"

Decoder = Callable[[type[Event], bytes], Event]
Encoder = Callable[[Event], bytes]

DECODERS: dict[str, Decoder] = {
    f"pydantic model_validate_json {BASELINE}": lambda m, b: m.model_validate_json(b),
    "pydantic validator validate_json": lambda m, b: m.__pydantic_validator__.validate_json(b),
    "json.loads + model_validate": lambda m, b: m.model_validate(json.loads(b)),
    "orjson.loads + model_validate": lambda m, b: m.model_validate(orjson.loads(b)),
    "msgspec.json.decode + model_validate": lambda m, b: m.model_validate(msgspec.json.decode(b)),
    "schemas.codec.decode (shipped)": decode,
}
ENCODERS: dict[str, Encoder] = {
    f"pydantic model_dump_json().encode() {BASELINE}": lambda e: e.model_dump_json(
        exclude_none=True
    ).encode(),
    "pydantic serializer to_json, bytes": lambda e: type(e).__pydantic_serializer__.to_json(
        e, exclude_none=True
    ),
    "json.dumps(model_dump(mode=json))": lambda e: json.dumps(
        e.model_dump(mode="json", exclude_none=True), separators=(",", ":")
    ).encode(),
    "orjson.dumps(model_dump())": lambda e: orjson.dumps(e.model_dump(exclude_none=True)),
    "msgspec.json.encode(model_dump())": lambda e: msgspec.json.encode(
        e.model_dump(exclude_none=True)
    ),
    "schemas.codec.encode (shipped)": encode,
}

_LABEL = b'{"request_id":"r","model_id":"m","timestamp":"2026-01-01T00:00:00Z","label":'
EDGE_VALID = {
    "big integer": _LABEL + b"100000000000000000000001}",
    "escaped text": _LABEL + b'"caf\\u00e9 \\"x\\""}',
}
"""Valid label events that a JSON library may get subtly wrong."""
EDGE_INVALID = {
    "NaN": _LABEL + b"NaN}",
    "1e400": _LABEL + b"1e400}",
    "boolean": _LABEL + b"true}",
    "lone surrogate": _LABEL + b'"\\ud800"}',
    "invalid UTF-8": _LABEL + b'"\xff"}',
}
"""Label events that the codec rejects."""


@dataclass(frozen=True)
class Row:
    """One measured approach."""

    event: str
    operation: str
    approach: str
    rate: float
    baseline: float
    same: str


def make_events(model: type[Event], count: int, seed: int = 7) -> list[Event]:
    """``count`` realistic events: predictions carry 20 mixed features, half have scores."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[Event] = []
    for i in range(count):
        request_id, model_id = f"req-{i:08d}", f"model-{i % 5}"
        timestamp = start + timedelta(milliseconds=rng.randrange(10**9))
        if model is LabelEvent:
            label = rng.choice(["legit", "fraud"])
            events.append(
                LabelEvent(
                    request_id=request_id, model_id=model_id, timestamp=timestamp, label=label
                )
            )
            continue
        features: dict[str, float | str | None] = {f"num_{k}": rng.gauss(0, 100) for k in range(12)}
        features |= {f"cat_{k}": rng.choice(["NL", "DE", "FR", "ES"]) for k in range(6)}
        features |= {"age": rng.choice([None, float(rng.randrange(18, 90))]), "n": 3.0}
        score = rng.random()
        events.append(
            PredictionEvent(
                request_id=request_id,
                model_id=model_id,
                model_version="2026.01.3",
                timestamp=timestamp,
                features=features,
                prediction="fraud" if score > 0.5 else "legit",
                score=score if i % 2 else None,
                probabilities={"fraud": score, "legit": 1 - score} if i % 2 else None,
            )
        )
    return events


def _outcome(function: Callable[..., object], *args: Any) -> object:
    """What ``function(*args)`` returns, or ``"rejected"`` if it raises anything."""
    try:
        return function(*args)
    except Exception:
        return "rejected"


def decoder_agrees(decoder: Decoder, model: type[Event], payloads: Sequence[bytes]) -> str:
    """``yes`` if ``decoder`` gives what the codec gives, on payloads and on the edge cases."""
    cases = [("sample", model, p) for p in payloads]
    cases += [(name, LabelEvent, p) for name, p in (EDGE_VALID | EDGE_INVALID).items()]
    for name, cls, payload in cases:
        if _outcome(decoder, cls, payload) != _outcome(decode, cls, payload):
            return f"no ({name})"
    return "yes"


def _round_trip(encoder: Encoder, event: Event) -> Event:
    return decode(type(event), encoder(event))


def encoder_agrees(encoder: Encoder, events: Sequence[Event]) -> str:
    """``yes`` if what ``encoder`` writes decodes back to the same event, edge cases included."""
    cases = [("sample", e) for e in events]
    cases += [(name, decode(LabelEvent, p)) for name, p in EDGE_VALID.items()]
    for name, event in cases:
        if _outcome(_round_trip, encoder, event) != event:
            return f"no ({name})"
    return "yes"


def _decode_all(decoder: Decoder, model: type[Event], payloads: Sequence[bytes]) -> list[Event]:
    return [decoder(model, p) for p in payloads]


def _encode_all(encoder: Encoder, events: Sequence[Event]) -> list[bytes]:
    return [encoder(e) for e in events]


def measure(count: int, rounds: int, min_seconds: float) -> list[Row]:
    """Time every decoder and encoder on predictions and on labels."""
    rows: list[Row] = []
    for model in (PredictionEvent, LabelEvent):
        events = make_events(model, count)
        payloads = [encode(e) for e in events]
        works: dict[tuple[str, str], Callable[[], object]] = {}
        same: dict[tuple[str, str], str] = {}
        for name, decoder in DECODERS.items():
            works["parse+validate", name] = partial(_decode_all, decoder, model, payloads)
            same["parse+validate", name] = decoder_agrees(decoder, model, payloads)
        for name, encoder in ENCODERS.items():
            works["serialize", name] = partial(_encode_all, encoder, events)
            same["serialize", name] = encoder_agrees(encoder, events)
        speeds = best_rates(list(works.values()), count, rounds, min_seconds)
        rates = dict(zip(works, speeds, strict=True))
        baseline = {op: r for (op, name), r in rates.items() if name.endswith(BASELINE)}
        rows += [
            Row(model.__name__, op, name, r, baseline[op], same[op, name])
            for (op, name), r in rates.items()
        ]
    return rows


def render(rows: Sequence[Row], count: int, rounds: int) -> str:
    """The markdown section: machine, command, table."""
    lines = [
        SECTION,
        "",
        f"{written(COMMAND)} Each approach handles the same {count} events per pass; best of"
        f" {rounds} interleaved rounds."
        " 'same results' means the same values out and the same inputs rejected as"
        " `schemas.codec`, on the sample and on edge cases (integers past 64 bits, escapes,"
        " NaN, 1e400, booleans, lone surrogates, invalid UTF-8). The shipped rows are the"
        " validator and serializer rows plus a size check: the gap between them is noise.",
        "",
        *machine(LIBRARIES),
        "",
        *table(
            ["event", "operation", "approach", "events/s", "vs baseline", "same results"],
            [
                (
                    r.event,
                    r.operation,
                    r.approach,
                    f"{r.rate:,.0f}",
                    f"{r.rate / r.baseline:.2f}x",
                    r.same,
                )
                for r in rows
            ],
            numeric="...rr",
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the section and write it into the benchmarks document."""
    options = parser("python -m bench.bench_codec", __doc__)
    options.add_argument("--events", type=int, default=1000, help="events per pass")
    options.add_argument("--rounds", type=int, default=10, help="timed rounds per approach")
    options.add_argument("--min-seconds", type=float, default=0.1, help="length of one round")
    args = options.parse_args(argv)
    if args.quick:
        args.events, args.rounds, args.min_seconds = 200, 2, 0.02
    rows = measure(args.events, args.rounds, args.min_seconds)
    publish(render(rows, args.events, args.rounds), args.output)


if __name__ == "__main__":
    main()
