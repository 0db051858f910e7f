"""The notifier: a consumer group on the alerts topic that commits only after delivery.

Each alert goes to every sink in turn (:func:`~stream_app.notify.delivery.deliver`). Its
offset is committed once every sink took it, refused it or gave up on it (those two are
dead-lettered with the reason), so a restarted notifier goes on from the first alert not yet
done. While an alert is half done (one sink took it, the next is still being tried), the
commit stays at that alert and its metadata names the sinks that took it: after a restart
they are not sent it again. A sink may still see an alert twice if the notifier dies between
its delivery and the commit; the webhook's ``Idempotency-Key`` is there for that.

Alerts are handled one at a time, in each partition's order: an alert being retried holds up
the alerts behind it (at most the backoff's total wait per sink).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from pipeline.dead_letters import dead_letter_record
from schemas.codec import decode
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert
from stream_app.alerts_feed import format_alert
from stream_app.notify.delivery import Backoff, deliver
from stream_app.notify.message import AlertFilter, payload
from stream_app.notify.sinks import Sink
from stream_app.settings import Settings
from stream_app.topics import TopicError, Topics

Level = Literal["info", "warning", "error"]
Say = Callable[[str, Level], None]

TAKEN = "driftstream-notify taken="
"""Commit metadata of a half-done alert: this prefix, then the keys of the sinks that took it."""
UNASSIGNED_WARNING_SECONDS = 30.0
CLIENT_ERROR_EVERY_SECONDS = 30.0
SESSION_TIMEOUT_MS = 10_000
MAX_POLL_INTERVAL_MS = (300_000, 86_400_000)
"""librdkafka's default, and its upper bound."""
COMMIT_EVERY = 500
"""Filtered-out alerts between two commits (they are committed when idle too)."""


@dataclass
class SinkCounts:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


@dataclass
class NotifyCounts:
    """What the notifier did so far: alerts read, left out by the filters, invalid (not a
    DriftAlert: dead-lettered), and per sink delivered, retried (failed tries followed by
    another) and failed (refused or out of tries: dead-lettered)."""

    read: int = 0
    filtered: int = 0
    invalid: int = 0
    sinks: dict[str, SinkCounts] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: the totals, then each sink's if there is more than one."""
        total = SinkCounts(*(sum(getattr(c, f) for c in self.sinks.values()) for f in _FIELDS))
        line = (
            f"{self.read} read: {_counts(total)}, {self.filtered} filtered out,"
            f" {self.invalid} invalid"
        )
        if len(self.sinks) > 1:
            line += "".join(f"; {name}: {_counts(c)}" for name, c in self.sinks.items())
        return line


_FIELDS = ("delivered", "retried", "failed")


def longest_alert_ms(sinks: Sequence[Sink], backoff: Backoff) -> int:
    """How long one alert may take with every sink failing every try: the consumer's
    ``max.poll.interval.ms``, so that a slow retry does not cost the notifier its partitions
    (at least librdkafka's default 5 minutes, at most its bound of a day).

    >>> from stream_app.notify.sinks import CommandSink
    >>> longest_alert_ms([CommandSink("true", timeout=600)], Backoff(5, 1.0, 60.0))
    3075000
    """
    waits = sum(backoff.delays())
    seconds = sum(backoff.attempts * sink.timeout + waits for sink in sinks) + 60
    low, high = MAX_POLL_INTERVAL_MS
    return int(min(max(seconds * 1000, low), high))


def _counts(counts: SinkCounts) -> str:
    return f"{counts.delivered} delivered, {counts.retried} retried, {counts.failed} failed"


class Notifier:
    """Delivers the alerts topic of ``settings`` to ``sinks``.

    Parameters
    ----------
    settings
        Kafka connection and topic prefix (alerts are read from, and dead letters written
        to, that prefix's topics).
    sinks
        Where each alert goes, in this order.
    alert_filter
        Which alerts are delivered (the others are read and committed).
    backoff
        Retries per alert and sink.
    group
        The consumer group: its committed offsets are what was delivered.
    start
        Where a group without committed offsets starts: the ``earliest`` alert or the
        ``latest`` (only alerts published from now on).
    say
        Told each line worth showing, with its level.
    """

    def __init__(
        self,
        settings: Settings,
        sinks: Sequence[Sink],
        alert_filter: AlertFilter,
        backoff: Backoff,
        group: str,
        start: Literal["earliest", "latest"],
        say: Say,
    ) -> None:
        self.sinks = list(sinks)
        self.filter = alert_filter
        self.backoff = backoff
        self.group = group
        self.say = say
        self.counts = NotifyCounts(sinks={sink.name: SinkCounts() for sink in sinks})
        self.topics = Topics(settings.topics.prefix)
        self.assigned: set[int] = set()
        self._taken: dict[int, tuple[int, set[str]]] = {}  # partition -> (offset, sink keys)
        self._pending: dict[int, int] = {}  # partition -> offset to commit (filtered alerts)
        self._since_commit = 0
        self._last_read = time.monotonic()  # of a record, or of the latest assignment
        self._client_errors: dict[int, float] = {}
        self._dead_letter_errors: list[str] = []
        client = settings.kafka.client_config()
        self._consumer = Consumer(
            {
                **client,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": start,
                "isolation.level": "read_committed",
                # a notifier killed without stopping holds its partitions this long
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "max.poll.interval.ms": longest_alert_ms(self.sinks, backoff),
                "error_cb": self._client_error,
            }
        )
        self._producer = Producer(
            {**client, "enable.idempotence": True, "error_cb": self._client_error}
        )

    def check_topics(self, timeout: float = 10.0) -> None:
        """Raise :class:`TopicError` unless the alerts and dead-letter topics exist."""
        try:
            found = self._consumer.list_topics(timeout=timeout).topics
        except KafkaException as exc:
            raise TopicError(f"cannot list the topics: {exc}") from None
        for topic in (self.topics.alerts, self.topics.deadletter):
            if topic not in found or found[topic].error is not None:
                raise TopicError(
                    f"topic {topic!r} does not exist: start the worker, or run"
                    " `driftstream topics create` (with the same DRIFTSTREAM_TOPICS__PREFIX)"
                )

    def run(self, stop: threading.Event, idle_seconds: float | None = None) -> NotifyCounts:
        """Deliver until ``stop`` is set (or, with ``idle_seconds``, until that long passes
        with partitions assigned and nothing to read); then commit what is done and close."""
        self._consumer.subscribe(
            [self.topics.alerts], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        started = time.monotonic()
        warned = False
        try:
            while not stop.is_set():
                message = self._consumer.poll(0.5)
                now = time.monotonic()
                if message is None:
                    self._commit_pending()
                    if not self.assigned:
                        if not warned and now - started > UNASSIGNED_WARNING_SECONDS:
                            warned = True
                            self.say(self._unassigned(), "warning")
                    elif idle_seconds is not None and now - self._last_read >= idle_seconds:
                        break
                    continue
                self._last_read = now
                if (error := message.error()) is not None:
                    self._client_error(error)
                    continue
                self._handle(message, stop)
        finally:
            self._commit_pending()
            self._consumer.close()
            self._producer.flush(10)
        return self.counts

    def _unassigned(self) -> str:
        return (
            f"no partition of {self.topics.alerts} assigned after"
            f" {UNASSIGNED_WARNING_SECONDS:g} s: other members of group {self.group!r} hold"
            " them all (a notifier killed without stopping holds them until its session"
            " times out, 45 s), or the broker is unreachable"
        )

    # -- one alert ------------------------------------------------------------------------

    def _handle(self, message: Message, stop: threading.Event) -> None:
        partition, offset = message.partition() or 0, message.offset() or 0
        self.counts.read += 1
        try:
            alert = decode(DriftAlert, message.value() or b"")
        except InvalidEvent as exc:
            self.counts.invalid += 1
            self._dead_letter(message, f"invalid alert: {exc.reason}", "notify")
            self.say(f"dead-lettered an invalid alert at {_source(message)}: {exc}", "error")
            self._commit(partition, offset + 1)
            return
        if not self.filter.passes(alert):
            self.counts.filtered += 1
            self._pending[partition] = offset + 1
            self._since_commit += 1
            if self._since_commit >= COMMIT_EVERY:
                self._commit_pending()
            return
        done_at, taken = self._taken.pop(partition, (-1, set()))
        if done_at != offset:
            taken = set()
        body = payload(alert)
        for sink in self.sinks:
            if sink.key in taken:
                continue
            outcome = deliver(sink, alert, body, self.backoff, stop.wait, self._retrying)
            counts = self.counts.sinks[sink.name]
            if outcome.status == "stopped":
                return  # not committed: the next run tries this sink again
            if outcome.status == "delivered":
                counts.delivered += 1
                tries = f" (attempt {outcome.attempts})" if outcome.attempts > 1 else ""
                self.say(f"→ {sink.name}{tries}: {format_alert(alert)}", "info")
            else:
                counts.failed += 1
                self._dead_letter(message, f"{sink.name}: {outcome.reason}", sink.name)
                self.say(
                    f"dead-lettered alert {alert.alert_id} for {sink.name}: {outcome.reason}",
                    "error",
                )
            taken.add(sink.key)
            if any(other.key not in taken for other in self.sinks):
                self._commit(partition, offset, TAKEN + ",".join(sorted(taken)))
        self._commit(partition, offset + 1)

    def _retrying(self, sink: Sink, alert: DriftAlert, attempt: int, wait: float, why: str) -> None:
        self.counts.sinks[sink.name].retried += 1
        self.say(
            f"retrying alert {alert.alert_id} for {sink.name} in {wait:g} s"
            f" (attempt {attempt} of {self.backoff.attempts} failed: {why})",
            "warning",
        )

    def _dead_letter(self, message: Message, reason: str, sink: str) -> None:
        """Write the alert's dead letter and wait until the broker has it (a dead letter
        that cannot be written stops the notifier: the alert stays uncommitted)."""
        record = dead_letter_record(message.key(), message.value(), reason, _source(message))
        self._producer.produce(
            self.topics.deadletter,
            key=record.key,
            value=record.value,
            headers=[*record.headers, ("driftstream-sink", sink.encode())],
            on_delivery=self._dead_letter_delivered,
        )
        if self._producer.flush(30) or self._dead_letter_errors:
            errors, self._dead_letter_errors = self._dead_letter_errors or ["timed out"], []
            raise KafkaException(f"cannot write to {self.topics.deadletter}: {errors[0]}")

    def _dead_letter_delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._dead_letter_errors.append(error.str())

    # -- offsets --------------------------------------------------------------------------

    def _commit(self, partition: int, offset: int, metadata: str | None = None) -> None:
        """Commit ``offset`` of ``partition`` (and the filtered alerts' pending offsets) now."""
        self._pending[partition] = offset
        offsets = [
            TopicPartition(
                self.topics.alerts,
                p,
                o,
                metadata=metadata if p == partition and metadata is not None else "",
            )
            for p, o in self._pending.items()
        ]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self.say(
                f"commit failed ({exc}): what was delivered since the last commit may be"
                " delivered again after a restart (with the same Idempotency-Key)",
                "warning",
            )
            return
        self._pending.clear()
        self._since_commit = 0

    def _commit_pending(self) -> None:
        if self._pending:
            partition, offset = next(iter(self._pending.items()))
            self._commit(partition, offset)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Note the newly assigned partitions and the half-done alert each may have."""
        self.assigned.update(tp.partition for tp in partitions)
        self._last_read = time.monotonic()  # idle time counts from the assignment
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            self.say(f"cannot read the committed offsets: {exc}", "warning")
            return
        for tp in committed:
            metadata = tp.metadata or ""
            if metadata.startswith(TAKEN) and tp.offset >= 0:
                keys = set(filter(None, metadata[len(TAKEN) :].split(",")))
                self._taken[tp.partition] = (tp.offset, keys)
        shown = ", ".join(str(p) for p in sorted(self.assigned))
        self.say(f"reading {self.topics.alerts} partitions {shown} as group {self.group}", "info")

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit_pending()
        for tp in partitions:
            self.assigned.discard(tp.partition)
            self._taken.pop(tp.partition, None)
            self._pending.pop(tp.partition, None)  # its next owner reads it again

    def _client_error(self, error: KafkaError) -> None:
        """A Kafka client error, shown at most every 30 s per kind (the client retries)."""
        now = time.monotonic()
        if now - self._client_errors.get(error.code(), -1e9) >= CLIENT_ERROR_EVERY_SECONDS:
            self._client_errors[error.code()] = now
            self.say(f"Kafka: {error.str()}", "error" if error.fatal() else "warning")


def _source(message: Message) -> str:
    return f"{message.topic()}/{message.partition()}/{message.offset()}"
