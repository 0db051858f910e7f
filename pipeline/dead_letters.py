"""What goes to the dead-letter topic for a message the worker cannot use.

The message as it came (key and value) with two headers: ``driftstream-reason`` (one line
naming the field) and ``driftstream-source`` (``topic/partition/offset``). A message too big to
send on (the broker accepts about 1 MiB, the worker's producer sends at most 1,000,000 bytes a
request, and the headers add to it) keeps only its first bytes, with a third header
``driftstream-truncated`` giving the original sizes; the whole of it stays at its source offset.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_KEY_BYTES = 16 * 1024
MAX_VALUE_BYTES = 512 * 1024


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def dead_letter_record(
    key: bytes | None,
    value: bytes | None,
    reason: str,
    source: str,
    sizes: tuple[int, int] | None = None,
) -> DeadLetter:
    """The dead-letter record of one bad message (``sizes``: its key's and value's as they
    came, when a runtime cut it already)."""
    headers = [("driftstream-reason", reason.encode()), ("driftstream-source", source.encode())]
    key_size, value_size = sizes or (len(key or b""), len(value or b""))
    if key_size > MAX_KEY_BYTES or value_size > MAX_VALUE_BYTES:
        came = f"key {key_size} bytes, value {value_size} bytes"
        headers.append(("driftstream-truncated", came.encode()))
        key, value = cut(key, value) or (key, value)
    return DeadLetter(key, value, headers)


def cut(key: bytes | None, value: bytes | None) -> tuple[bytes | None, bytes | None] | None:
    """A message too big to send on, cut as its dead letter would keep it; None if it fits.
    Cut, it can only be dead-lettered (an event is at most ``MAX_EVENT_BYTES``)."""
    if len(key or b"") <= MAX_KEY_BYTES and len(value or b"") <= MAX_VALUE_BYTES:
        return None
    return (
        None if key is None else key[:MAX_KEY_BYTES],
        None if value is None else value[:MAX_VALUE_BYTES],
    )
