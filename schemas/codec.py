"""The one serialization path: bytes in, typed event out, and back.

Every producer and consumer in driftstream goes through ``encode`` and ``decode`` so that the
size bound, the validation rules and the error messages are the same everywhere:

>>> from schemas.events import LabelEvent
>>> data = b'{"request_id": "r1", "model_id": "fraud", "timestamp": "2026-01-01T00:00:00Z",'
>>> label = decode(LabelEvent, data + b' "label": 1}')
>>> encode(label)
b'{"schema_version":1,"request_id":"r1","model_id":"fraud","timestamp":"2026-01-01T00:00:00Z","label":1}'
>>> try:
...     decode(LabelEvent, data + b' "label": NaN}')
... except InvalidEvent as exc:
...     print(exc.reason)
LabelEvent.label: Input should be a finite number or a string of 1 to 256 characters

Both directions call pydantic-core directly, the model's validator and serializer, which
skips a little of ``model_validate_json``'s overhead and ``model_dump_json``'s str-to-bytes
copy. Its JSON parser validates in the same pass, keeps integers of any size exact and rejects
invalid UTF-8 and lone surrogates; ``bench/bench_codec.py`` measures the alternatives.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from schemas.errors import InvalidEvent
from schemas.events import Event

MAX_EVENT_BYTES = 64 * 1024
"""The largest event, in bytes of JSON; bigger payloads are rejected before parsing."""

E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    """Serialize an event to compact UTF-8 JSON; ``None`` optional fields are left out."""
    data = type(event).__pydantic_serializer__.to_json(event, exclude_none=True)
    if len(data) > MAX_EVENT_BYTES:
        raise oversize(type(event).__name__, len(data))
    return data


def decode(model: type[E], data: bytes) -> E:
    """Parse and validate ``data`` as ``model``; raise ``InvalidEvent`` with a one-line reason."""
    if len(data) > MAX_EVENT_BYTES:
        raise oversize(model.__name__, len(data))
    try:
        event: E = model.__pydantic_validator__.validate_json(data)
    except ValidationError as exc:
        raise _invalid(model.__name__, data, exc) from None
    return event


def oversize(model_name: str, size: int) -> InvalidEvent:
    """Why an event of ``size`` bytes is refused."""
    return InvalidEvent(
        f"{model_name}: event is {size} bytes, over the {MAX_EVENT_BYTES} byte limit"
    )


def _invalid(model_name: str, data: bytes, exc: ValidationError) -> InvalidEvent:
    if exc.errors()[0]["type"] == "json_invalid":
        try:
            data.decode()
        except UnicodeDecodeError as bad:
            return InvalidEvent(
                f"{model_name}: payload is not valid UTF-8 ({bad.reason} at byte {bad.start})"
            )
    return InvalidEvent.from_validation_error(model_name, exc)
