"""The Kafka-native runtime's transactions: the transactional producer, every call to Kafka's
transaction API through one retry helper, and what a commit that keeps failing becomes.

- :func:`retrying` is the one retry helper: ``begin_transaction``, ``send_offsets_to_transaction``,
  ``commit_transaction`` and ``abort_transaction`` all go through it. An error librdkafka calls
  retriable (a coordinator moving, a request timing out) is tried again, ``attempts`` times in
  all, ``backoff`` seconds apart; any other error, or one that requires the transaction be
  aborted, is raised at once (quixstreams' ``internal_producer.py`` does the same).
- :class:`TransactionalProducer` owns the producer: it sends, runs the transaction calls, keeps
  the first failed delivery of a transaction (the record that broke it, for the log), and works
  around librdkafka issues #5456 and #5511: ``send_offsets_to_transaction`` can block past its
  own timeout while the group coordinator restarts, so it runs in a thread of its own and is
  given up after ``OFFSETS_DEADLINE`` seconds (the producer is then replaced: same
  transactional id, so the new one fences the old and ends its transaction).
- :class:`CommitFailures` watches the commits that fail. A transient failure (a broker
  restarting, a rebalance) is rolled back and tried again at WARNING, as before. A failure that
  repeats the same way (``REPEATS`` failed commits with the same error, not one of the transient
  ones, and no commit in between, e.g. a record over the topic's ``max.message.bytes``:
  ``MSG_SIZE_TOO_LARGE``; the errors such a failure leaves behind, like
  ``OUT_OF_ORDER_SEQUENCE_NUMBER``, may come between), or commits failing for ``STUCK_SECONDS``
  whatever the error, is the worker stuck: an ERROR line with the cause and what to do (at
  most once a minute), the pipeline counter ``stuck_commits`` (Redis, ``driftstream state``,
  ``pipeline_events_total{event="stuck_commits"}``), and a pause growing to 30 s between tries.
  It stays exactly once: each failed try is rolled back to the last commit (nothing partial is
  ever committed, no record is skipped) and the worker goes on the moment a commit goes through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from stream_app.sampled_log import SampledLog

log = logging.getLogger(__name__)

T = TypeVar("T")

COMMIT_ATTEMPTS = 10
"""Tries of a ``commit_transaction`` that fails with a retriable error (30 s timeout each)."""
ABORT_ATTEMPTS = 3
"""Tries of an ``abort_transaction`` before the producer is replaced."""
OFFSETS_ATTEMPTS = 3
OFFSETS_DEADLINE = 40.0
"""Seconds after which a ``send_offsets_to_transaction`` that has not returned is given up."""
BACKOFF_SECONDS = 0.5
REPEATS = 3
"""Failed commits with the same (not transient) error, none committed in between, that make the
worker stuck."""
STUCK_SECONDS = 300.0
"""Commits failing this long, with any errors, make the worker stuck."""
MAX_PAUSE_SECONDS = 30.0
"""The longest pause between two tries of a stuck worker."""
STUCK_LOG_SECONDS = 60.0

TRANSIENT = {
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._STATE,
    KafkaError._FENCED,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.CONCURRENT_TRANSACTIONS,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    KafkaError.UNKNOWN_PRODUCER_ID,
}
"""Errors of a broker restarting, a coordinator moving or a rebalance: they pass by themselves
(as do the errors librdkafka calls retriable), so repeating them does not make the worker stuck
before ``STUCK_SECONDS``."""

_SIZE = (
    "a record is over the size its topic or the broker accepts: raise the topic's "
    "max.message.bytes (kafka-configs.sh --alter --entity-type topics --entity-name TOPIC "
    "--add-config max.message.bytes=1048588; the broker's message.max.bytes is the default) "
    "or find what writes so large a record"
)
_ACLS = (
    "the worker's principal is not allowed to: grant the ACLs listed in the README "
    '("Running on your own Kafka", "ACLs the worker\'s principal needs")'
)
ADVICE = {
    KafkaError.MSG_SIZE_TOO_LARGE: _SIZE,
    KafkaError.RECORD_LIST_TOO_LARGE: _SIZE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED: _ACLS,
    KafkaError.GROUP_AUTHORIZATION_FAILED: _ACLS,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: _ACLS,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: _ACLS,
    KafkaError.UNKNOWN_TOPIC_OR_PART: (
        "a topic the worker writes is missing: create it (driftstream topics create) or let "
        "the worker create it at start"
    ),
    KafkaError.POLICY_VIOLATION: "the broker's policy refuses a record: see the broker's log",
    KafkaError.INVALID_RECORD: "the broker refuses a record as invalid: see the broker's log",
}
"""What to do about a commit that keeps failing with an error, by its code."""
DEFAULT_ADVICE = "see the error above and the broker's log"


def retrying(
    what: str,
    call: Callable[[], T],
    attempts: int = 3,
    backoff: float = BACKOFF_SECONDS,
    stopping: Callable[[], bool] = lambda: False,
) -> T:
    """``call()``, tried again while it fails with an error librdkafka calls retriable (not one
    that is fatal or requires the transaction be aborted), ``attempts`` times in all and
    ``backoff`` seconds apart, and not once ``stopping()``; the last error is raised as it came.
    """
    attempt = 1
    while True:
        try:
            return call()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            again = error.retriable() and not error.fatal() and not error.txn_requires_abort()
            if not again or attempt >= attempts or stopping():
                raise
            log.warning("%s: %s; trying again (%d of %d)", what, error.str(), attempt, attempts)
            attempt += 1
            time.sleep(backoff)


def until_done(what: str, step: Callable[[], None], stopping: Callable[[], bool]) -> None:
    """Run ``step`` until it gets through Kafka (a broker restarting, a coordinator moving),
    saying so once a second; ``stopping()`` ends the trying."""
    while not stopping():
        try:
            step()
            return
        except KafkaException as exc:
            log.warning("%s: %s; trying again", what, exc.args[0].str())
            time.sleep(1.0)


class TransactionalProducer:
    """The worker's one transactional producer (``config`` holds its ``transactional.id``):
    what is sent between :meth:`begin` and :meth:`commit` is committed atomically with the
    offsets given to :meth:`send_offsets`, or rolled back by :meth:`abort`."""

    def __init__(self, config: dict[str, Any], stopping: Callable[[], bool]) -> None:
        self.config = config
        self.stopping = stopping
        self.failed_delivery: str | None = None
        """The first record of the open transaction that could not be written, and why."""
        self.producer = self._start()

    def _start(self) -> Producer:
        producer = Producer(
            {**self.config, "on_delivery": self._delivered, "delivery.report.only.error": True}
        )
        until_done(
            "starting the transactional producer",
            lambda: producer.init_transactions(30),
            self.stopping,
        )
        if not self.stopping():
            self.failed_delivery = None
            retrying("beginning a transaction", producer.begin_transaction)
        return producer

    def replace(self) -> None:
        """A new producer with the same transactional id: it fences the old one and ends its
        open transaction (the broker aborts it)."""
        self.producer = self._start()

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self.failed_delivery is None:
            size = len(message.key() or b"") + len(message.value() or b"")
            self.failed_delivery = (
                f"a record of {size:,} bytes to {message.topic()} [{message.partition()}] "
                f"failed: {error.str()} ({error.name()})"
            )

    def send(self, topic: str, key: bytes | None, value: bytes | None, **kwargs: Any) -> None:
        """Produce one record into the open transaction (waiting while the local queue is full)."""
        while True:
            try:
                self.producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.05)
            except KafkaException as exc:  # refused before it left, e.g. over message.max.bytes
                if self.failed_delivery is None:
                    size = len(key or b"") + len(value or b"")
                    error: KafkaError = exc.args[0]
                    self.failed_delivery = (
                        f"a record of {size:,} bytes to {topic} was refused: {error.str()}"
                    )
                raise

    def poll(self, timeout: float = 0) -> None:
        self.producer.poll(timeout)

    def flush(self, timeout: float) -> None:
        self.producer.flush(timeout)

    def begin(self) -> None:
        self.failed_delivery = None
        retrying("beginning a transaction", self.producer.begin_transaction, stopping=self.stopping)

    def commit(self, attempts: int = COMMIT_ATTEMPTS) -> None:
        retrying(
            "committing the transaction",
            lambda: self.producer.commit_transaction(30),
            attempts,
            stopping=self.stopping,
        )

    def send_offsets(self, offsets: list[TopicPartition], group: Any) -> None:
        """``send_offsets_to_transaction`` through the retry helper, each try watched: one that
        hangs past ``OFFSETS_DEADLINE`` (librdkafka #5456, #5511) replaces the producer and
        fails the commit, so the caller rolls back."""
        retrying(
            "sending the offsets to the transaction",
            lambda: self._send_offsets_watched(offsets, group),
            OFFSETS_ATTEMPTS,
            stopping=self.stopping,
        )

    def _send_offsets_watched(self, offsets: list[TopicPartition], group: Any) -> None:
        producer = self.producer
        failures: list[BaseException] = []

        def send() -> None:
            try:
                producer.send_offsets_to_transaction(offsets, group, 30)
            except BaseException as exc:  # handed to the committing thread below
                failures.append(exc)

        sender = threading.Thread(target=send, name="send-offsets", daemon=True)
        sender.start()
        sender.join(OFFSETS_DEADLINE)
        if sender.is_alive():
            log.warning(
                "sending the offsets to the transaction hung for %.0fs; replacing the producer",
                OFFSETS_DEADLINE,
            )
            self.replace()
            hung = KafkaError(KafkaError._TIMED_OUT, "send_offsets hung", txn_requires_abort=True)
            raise KafkaException(hung)
        if failures:
            raise failures[0]

    def abort(self) -> None:
        """Abort the open transaction and begin the next; a producer that cannot (its
        coordinator connection never came back, seen after a broker restart: it times out for
        ever) is replaced."""
        if self.stopping():
            return
        try:
            retrying(
                "aborting the transaction",
                lambda: self.producer.abort_transaction(30),
                ABORT_ATTEMPTS,
                stopping=self.stopping,
            )
            self.begin()
        except KafkaException as exc:
            log.warning("producer failed (%s); starting a new one", exc.args[0].str())
            self.replace()


class CommitFailures:
    """The commits that failed since the last one that went through (see the module's
    docstring): :meth:`failed` for each, :meth:`succeeded` when one goes through."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.error: KafkaError | None = None  # the last
        self.by_code: Counter[int] = Counter()  # failed commits by error, since the last commit
        self.failing_since: float | None = None
        self.was_stuck = False
        self.uncounted = 0  # stuck tries not yet counted in stuck_commits (any thread)
        self.stuck_log = SampledLog(
            log, "transactions keep failing", STUCK_LOG_SECONDS, logging.ERROR
        )

    @property
    def stuck(self) -> bool:
        if self.error is None or self.failing_since is None:
            return False
        if self.clock() - self.failing_since >= STUCK_SECONDS:
            return True
        return self.repeats(self.error) >= REPEATS

    def repeats(self, error: KafkaError) -> int:
        """How often commits failed with ``error`` since the last commit (0 for a transient
        error)."""
        transient = error.retriable() or error.code() in TRANSIENT
        return 0 if transient else self.by_code[error.code()]

    def failed(self, error: KafkaError, cause: str | None = None) -> float:
        """Record a failed commit (rolled back by the caller); how long to pause before the
        next try (0 unless stuck)."""
        if self.failing_since is None:
            self.failing_since = self.clock()
        self.by_code[error.code()] += 1
        self.error = error
        if not self.stuck:
            log.warning("transaction failed (%s); rolling back to the last commit", error.str())
            return 0.0
        self.was_stuck = True
        self.uncounted += 1
        pause = min(MAX_PAUSE_SECONDS, 2.0 ** max(0, self.repeats(error) - REPEATS))
        failures = sum(self.by_code.values())
        seconds = self.clock() - self.failing_since
        self.stuck_log.record(
            f"({failures} failed commits in {seconds:.0f}s, {self.by_code[error.code()]} "
            f"with {error.name()})",
            f"{error.str()}{f'; {cause}' if cause else ''}. To do: "
            f"{ADVICE.get(error.code(), DEFAULT_ADVICE)}. Nothing is committed until then: "
            f"each try is rolled back to the last commit (exactly once) and tried again, "
            f"the next in {pause:.0f}s",
        )
        return pause

    def succeeded(self) -> None:
        if self.was_stuck:
            log.warning(
                "a transaction committed again after %d failed commits",
                sum(self.by_code.values()),
            )
        self.error, self.failing_since, self.was_stuck = None, None, False
        self.by_code.clear()

    def take_count(self) -> int:
        """Stuck tries since the last call, for the ``stuck_commits`` counter."""
        n, self.uncounted = self.uncounted, 0
        return n
