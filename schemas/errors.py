"""The error raised for any event that does not meet its contract."""

from __future__ import annotations

from pydantic import ValidationError

_MAX_PART = 64
"""Location parts (field names, dict keys) longer than this are cut in the reason."""


class InvalidEvent(ValueError):  # noqa: N818 - the public name others code against
    """An event that failed validation; ``reason`` is one line naming the offending field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @classmethod
    def from_validation_error(cls, model_name: str, exc: ValidationError) -> InvalidEvent:
        """The first error as ``Model.field.key: message``, counting any others.

        >>> from schemas.events import LabelEvent
        >>> try:
        ...     LabelEvent.model_validate({"request_id": ""})
        ... except ValidationError as exc:
        ...     print(InvalidEvent.from_validation_error("LabelEvent", exc))
        LabelEvent.request_id: String should have at least 1 character (+3 more)
        """
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        where = "".join(f".{_short(part)}" for part in first["loc"])
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return cls(" ".join(f"{model_name}{where}: {first['msg']}{more}".split()))


def _short(part: str | int) -> str:
    # control characters (NUL, ESC, ...) escaped; whitespace is collapsed by the caller
    text = "".join(c if c.isprintable() or c.isspace() else repr(c)[1:-1] for c in str(part))
    return text if len(text) <= _MAX_PART else f"{text[: _MAX_PART - 3]}..."
