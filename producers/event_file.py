"""Events as a JSON-lines file: what ``driftstream simulate --to-file`` writes and replay reads.

One line per event, in stream order, UTF-8::

    {"kind": "prediction", "event": {<PredictionEvent JSON>}}
    {"kind": "label", "event": {<LabelEvent JSON>}}

``event`` is exactly the Kafka message value (``schemas.codec.encode``) of that event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from producers.sink import DeliveryStats
from schemas.codec import decode, encode
from schemas.errors import InvalidEvent
from schemas.events import LabelEvent, PredictionEvent

EVENT_KINDS: dict[str, type[PredictionEvent] | type[LabelEvent]] = {
    "prediction": PredictionEvent,
    "label": LabelEvent,
}


class EventFileWriter:
    """Writes events to a JSON-lines file (an ``EventSink``; every written line is delivered)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self.stats = DeliveryStats()

    def send(self, event: PredictionEvent | LabelEvent) -> None:
        kind = b"prediction" if isinstance(event, PredictionEvent) else b"label"
        self._file.write(b'{"kind": "' + kind + b'", "event": ' + encode(event) + b"}\n")
        self.stats.sent += 1
        self.stats.delivered += 1

    def close(self) -> DeliveryStats:
        self._file.close()
        return self.stats


def read_event_file(path: Path) -> Iterator[PredictionEvent | LabelEvent]:
    """The events of a file written by ``EventFileWriter``; ``InvalidEvent`` names a bad line."""
    with path.open("rb") as lines:
        for item in scan_event_lines(lines, str(path)):
            if isinstance(item, InvalidEvent):
                raise item
            yield item


_WRITTEN = tuple(
    (b'{"kind": "' + kind.encode() + b'", "event": ', model) for kind, model in EVENT_KINDS.items()
)
"""How ``EventFileWriter`` begins a line of each kind: the event is the rest, but its ``}``."""


def _as_written(line: bytes) -> PredictionEvent | LabelEvent | None:
    """The event of a line exactly as ``EventFileWriter`` writes it, validated in one pass
    (None: another layout, or not valid: the general path says why)."""
    line = line.rstrip(b"\r\n")
    for prefix, model in _WRITTEN:
        if line.startswith(prefix) and line.endswith(b"}"):
            try:
                return decode(model, line[len(prefix) : -1])
            except InvalidEvent:
                return None
    return None


def scan_event_lines(
    lines: Iterable[bytes], name: str
) -> Iterator[PredictionEvent | LabelEvent | InvalidEvent]:
    """The events of JSON lines, and in place of each bad line an ``InvalidEvent`` naming
    ``name:line`` (the replay skips and counts them)."""
    for number, line in enumerate(lines, start=1):
        if (written := _as_written(line)) is not None:
            yield written
            continue
        try:
            record = json.loads(line)
            event = decode(EVENT_KINDS[record["kind"]], json.dumps(record["event"]).encode())
        except (ValueError, KeyError, TypeError) as exc:
            reason = exc.reason if isinstance(exc, InvalidEvent) else repr(exc)
            invalid = InvalidEvent(f"{name}:{number}: {reason}")
            invalid.__cause__ = exc
            yield invalid
        else:
            yield event
