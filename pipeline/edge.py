"""The edge: input records become typed events, or a reason to dead-letter them.

Every check an input record must pass before the join sees it: it decodes as its topic's event
(``schemas.codec``: JSON, types, size, schema version), it is keyed by its own ``request_id``
(the join's partitioning relies on it) and its timestamp is not far ahead of the worker's clock
(one such event would move the event-time watermark and expire everything pending).

>>> from datetime import UTC, datetime
>>> body = b'{"request_id": "r1", "model_id": "m", "model_version": "1", "features": {},'
>>> body += b' "prediction": 1}'
>>> record = InputRecord("p", 0, 7, b"r1", body)
>>> try:
...     parse_input(record, is_prediction=True, now=datetime.now(UTC), max_future_seconds=300)
... except InvalidEvent as exc:
...     print(exc.reason)
PredictionEvent.timestamp: Field required
"""

from __future__ import annotations

from datetime import datetime

from pipeline.dead_letters import dead_letter_record
from pipeline.effects import DeadLettered, Effects, InputRecord, PartitionTag
from schemas.codec import MAX_EVENT_BYTES, decode, oversize
from schemas.errors import InvalidEvent
from schemas.events import LabelEvent, PredictionEvent


def parse_input(
    record: InputRecord, *, is_prediction: bool, now: datetime, max_future_seconds: float
) -> PredictionEvent | LabelEvent:
    """The event in ``record``; :class:`InvalidEvent` with a one-line reason if it is not one."""
    model = PredictionEvent if is_prediction else LabelEvent
    if record.value is None:
        raise InvalidEvent(f"{model.__name__}: message has no value")
    if record.sizes is not None and record.sizes[1] > MAX_EVENT_BYTES:  # cut on its way here
        raise oversize(model.__name__, record.sizes[1])
    event = (
        decode(PredictionEvent, record.value) if is_prediction else decode(LabelEvent, record.value)
    )
    if record.key is None:
        raise InvalidEvent(f"{model.__name__}: message has no key; key it by request_id")
    if record.key != event.request_id.encode():
        raise InvalidEvent(
            f"{model.__name__}.request_id: {event.request_id!r} does not match the message key"
        )
    ahead = (event.timestamp - now).total_seconds()
    if ahead > max_future_seconds:
        raise InvalidEvent(
            f"{model.__name__}.timestamp: {event.timestamp.isoformat()} is {ahead:.0f}s "
            f"ahead of this worker's clock (at most {max_future_seconds:.0f}s allowed)"
        )
    return event


def dead_letter(record: InputRecord, reason: str, effects: Effects, source: PartitionTag) -> None:
    """Send ``record`` as it came (cut if huge) to the dead-letter stream with its reason, and
    count it under ``source`` (the partition whose state owns the count)."""
    letter = dead_letter_record(record.key, record.value, reason, record.source, record.sizes)
    effects.emit("deadletter", letter.key, letter.value, letter.headers)
    effects.dead_letters.append(DeadLettered(record.source, reason))
    effects.count(None, "deadlettered", source=source)
