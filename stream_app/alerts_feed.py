"""Reading the alerts topic: what ``driftstream alerts`` prints and the demo shows live."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import decode
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert, Explanation, SliceContribution
from stream_app.settings import Settings
from stream_app.topics import Topics


def read_alerts(
    settings: Settings,
    *,
    follow: bool,
    idle_seconds: float = 3.0,
    stop: threading.Event | None = None,
) -> Iterator[DriftAlert | InvalidEvent]:
    """Alerts from the beginning of the topic, in order; invalid records as ``InvalidEvent``.

    Without ``follow`` it ends after ``idle_seconds`` with no new alert; with ``follow`` it
    ends when ``stop`` is set (or never).
    """
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"driftstream-alerts-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([Topics(settings.topics.prefix).alerts])
    try:
        while stop is None or not stop.is_set():
            message = consumer.poll(0.5 if follow else idle_seconds)
            if message is None:
                if follow:
                    continue
                return
            if message.error() is not None:
                continue
            try:
                yield decode(DriftAlert, message.value() or b"")
            except InvalidEvent as exc:
                yield exc
    finally:
        consumer.close()


def recent_alerts(settings: Settings, per_partition: int) -> list[DriftAlert]:
    """The valid alerts among the last ``per_partition`` records of each alerts partition."""
    topic = Topics(settings.topics.prefix).alerts
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"driftstream-alerts-tail-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        assignment, ends = [], {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            if high > low:
                assignment.append(TopicPartition(topic, partition, max(low, high - per_partition)))
                ends[partition] = high
        consumer.assign(assignment)
        alerts: list[DriftAlert] = []
        while ends:
            message = consumer.poll(10)
            if message is None:
                raise TimeoutError(f"reading the tail of {topic} timed out")
            if message.error() is not None:
                continue
            with suppress(InvalidEvent):  # not ours to judge here; `driftstream alerts` is
                alerts.append(decode(DriftAlert, message.value() or b""))
            if (message.offset() or 0) + 1 >= ends.get(message.partition() or 0, 0):
                ends.pop(message.partition() or 0, None)
        return alerts
    finally:
        consumer.close()


SHOWN_MOVED_VALUES = 3
"""The most moved values of a categorical alert that its line names."""
SHOWN_SLICES = 2
"""The most slices of a concept alert's explanation that its line names."""
SHOWN_VALUE_LENGTH = 40


def format_alert(alert: DriftAlert) -> str:
    """One line per alert, for people. After the alert's id, ``new incident`` if it opened
    one, else ``incident [id]`` of the incident it joined; a categorical alert's line ends
    with its most moved values and their shares before and after (``zip0 0.11→0.52``), an
    explained concept alert's with where the error rose (``where: zipcode=zip3 error
    0.12→0.71 on 11% of traffic (+0.063)``, or ``broad``) and the data signals that alerted
    in the same window."""
    line = (
        f"{alert.event_time:%Y-%m-%d %H:%M:%S} {alert.severity.upper():8} {alert.model_id} "
        f"{alert.kind} drift on {alert.signal} ({alert.detector}): mean {alert.before.mean:.3f} "
        f"-> {alert.after.mean:.3f} [{alert.alert_id[:12]}]"
    )
    if alert.incident_id == alert.alert_id:
        line += " new incident"
    elif alert.incident_id is not None:
        line += f" incident [{alert.incident_id[:12]}]"
    if alert.moved:
        moved = alert.moved[:SHOWN_MOVED_VALUES]
        line += " moved: " + ", ".join(
            f"{_shown(share.value)} {share.before:.2f}→{share.after:.2f}" for share in moved
        )
    if alert.explanation is not None:
        line += " " + format_explanation(alert.explanation)
    return line


def format_explanation(explanation: Explanation) -> str:
    """A concept alert's explanation in a few words: broad, or its top slices."""
    parts = [_slice(s) for s in explanation.slices[:SHOWN_SLICES]]
    text = ("broad: " if explanation.broad else "where: ") + ("; ".join(parts) or "no slice")
    if explanation.data_signals:
        text += " | data alerts: " + ", ".join(explanation.data_signals[:3])
    return text


def slice_name(part: SliceContribution) -> str:
    """How people read a slice of an explanation: ``zipcode=zip3``, ``500<=amount``,
    ``70,309<=salary<84,270`` or ``age missing`` (the alerts line, the report's bars)."""
    if part.missing:
        return f"{part.feature} missing"
    if part.value is not None:
        return f"{part.feature}={_shown(part.value)}"
    low = "" if part.low is None else f"{_number(part.low)}<="
    high = "" if part.high is None else f"<{_number(part.high)}"
    return f"{low}{part.feature}{high}"


def slice_change(part: SliceContribution) -> str:
    """A slice's error before and after and its share of the traffic after, for people (the
    alerts line, the report's bars); ``-`` for a side without outcomes.

    >>> part = SliceContribution(feature="age", missing=True, share_before=0.1,
    ...     share_after=0.114, error_before=None, error_after=0.7061, contribution=0.0634,
    ...     from_error=0.05, from_share=0.0134)
    >>> slice_change(part)
    'error -→0.71 on 11% of traffic'
    >>> _slice(part)
    'age missing error -→0.71 on 11% of traffic (+0.063)'
    """
    before = "-" if part.error_before is None else f"{part.error_before:.2f}"
    after = "-" if part.error_after is None else f"{part.error_after:.2f}"
    return f"error {before}→{after} on {part.share_after:.0%} of traffic"


def _slice(part: SliceContribution) -> str:
    return f"{slice_name(part)} {slice_change(part)} ({part.contribution:+.3f})"


def _shown(value: str) -> str:
    """A category value fit for one terminal line: itself if printable (else its repr), cut to
    ``SHOWN_VALUE_LENGTH`` characters."""
    text = value if value.isprintable() else repr(value)
    return text if len(text) <= SHOWN_VALUE_LENGTH else f"{text[: SHOWN_VALUE_LENGTH - 1]}…"


def _number(value: float) -> str:
    """A bin edge for people: ``125,300`` or ``0.0314``, not ``1.253e+05``.

    >>> _number(125312.7), _number(0.031415), _number(-42.0)
    ('125,313', '0.0314', '-42')
    """
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:.3g}"
