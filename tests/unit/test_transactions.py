"""The Kafka-native runtime's transaction calls and failed commits, without Kafka."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from stream_app.runtimes.kafka import transactions
from stream_app.runtimes.kafka.transactions import (
    REPEATS,
    STUCK_SECONDS,
    CommitFailures,
    TransactionalProducer,
    retrying,
)


def failure(code: int, retriable: bool = False, txn_requires_abort: bool = False) -> KafkaError:
    return KafkaError(
        code, "broker said no", retriable=retriable, txn_requires_abort=txn_requires_abort
    )


class Failing:
    """A call that fails with ``errors`` in turn, then returns "done"."""

    def __init__(self, *errors: KafkaError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise KafkaException(self.errors.pop(0))
        return "done"


def test_retriable_errors_are_tried_again() -> None:
    call = Failing(failure(KafkaError._TIMED_OUT, retriable=True), failure(7, retriable=True))
    assert retrying("committing", call, attempts=3, backoff=0) == "done"
    assert call.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        failure(KafkaError.MSG_SIZE_TOO_LARGE, txn_requires_abort=True),
        failure(KafkaError._TIMED_OUT, retriable=True, txn_requires_abort=True),
        failure(KafkaError.TOPIC_AUTHORIZATION_FAILED),
    ],
)
def test_other_errors_are_raised_at_once(error: KafkaError) -> None:
    call = Failing(error)
    with pytest.raises(KafkaException) as raised:
        retrying("committing", call, attempts=5, backoff=0)
    assert raised.value.args[0] is error
    assert call.calls == 1


def test_retries_end_after_the_attempts() -> None:
    call = Failing(*[failure(KafkaError._TIMED_OUT, retriable=True)] * 5)
    with pytest.raises(KafkaException):
        retrying("committing", call, attempts=3, backoff=0)
    assert call.calls == 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_commit_failing_the_same_way_is_an_error_with_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = CommitFailures(Clock())
    too_large = failure(KafkaError.MSG_SIZE_TOO_LARGE, txn_requires_abort=True)
    cause = "a record of 70,000 bytes to app-detect-store [0] failed"
    with caplog.at_level(logging.WARNING):
        pauses = [failures.failed(too_large, cause) for _ in range(REPEATS + 2)]
    assert pauses[: REPEATS - 1] == [0.0] * (REPEATS - 1)
    assert all(p > 0 for p in pauses[REPEATS - 1 :]), pauses
    assert pauses[-1] > pauses[REPEATS - 1], "the pause grows"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one line a minute at most"
    assert "MSG_SIZE_TOO_LARGE" in errors[0].getMessage()
    assert cause in errors[0].getMessage()
    assert "max.message.bytes" in errors[0].getMessage()
    assert failures.take_count() == 3
    assert failures.take_count() == 0
    failures.succeeded()
    assert failures.failed(too_large) == 0.0, "a commit went through: the count starts again"


def test_transient_failures_are_warnings_until_they_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = CommitFailures(clock)
    broker_away = [
        failure(KafkaError._TRANSPORT),
        failure(KafkaError.COORDINATOR_NOT_AVAILABLE, retriable=True),
        failure(KafkaError._TIMED_OUT, txn_requires_abort=True),
    ]
    with caplog.at_level(logging.WARNING):
        for _ in range(10):
            for error in broker_away:
                assert failures.failed(error) == 0.0
                clock.now += 1
        for _ in range(2 * REPEATS):  # the same transient error again and again
            assert failures.failed(failure(KafkaError._TIMED_OUT)) == 0.0
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        clock.now += STUCK_SECONDS
        assert failures.failed(failure(KafkaError._TIMED_OUT)) > 0
    assert [r.levelno for r in caplog.records].count(logging.ERROR) == 1
    assert failures.take_count() == 1


def test_the_same_error_between_others_is_the_same_way() -> None:
    """What a failure leaves behind (the next produce out of sequence) does not hide it."""
    failures = CommitFailures(Clock())
    too_large = failure(KafkaError.MSG_SIZE_TOO_LARGE)
    behind = failure(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER)
    other = failure(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    pauses = [failures.failed(e) for e in [too_large, behind, other, too_large, other, behind]]
    assert pauses == [0.0] * 6
    assert failures.failed(too_large) > 0
    assert failures.take_count() == 1


class FakeProducer:
    def __init__(self, hang: threading.Event | None = None) -> None:
        self.hang = hang
        self.commits = Failing(failure(KafkaError._TIMED_OUT, retriable=True))

    def send_offsets_to_transaction(self, *_args: Any) -> None:
        if self.hang is not None:
            self.hang.wait(5)

    def commit_transaction(self, _timeout: float) -> None:
        self.commits()


def fake_transactions(producer: FakeProducer) -> tuple[TransactionalProducer, list[str]]:
    replaced: list[str] = []
    txn = TransactionalProducer.__new__(TransactionalProducer)
    txn.stopping = lambda: False
    txn.failed_delivery = None
    txn.producer = producer  # type: ignore[assignment]
    txn.replace = lambda: replaced.append("new producer")  # type: ignore[method-assign]
    return txn, replaced


def test_commit_goes_through_the_retry_helper() -> None:
    producer = FakeProducer()
    txn, _ = fake_transactions(producer)
    txn.commit(attempts=2)
    assert producer.commits.calls == 2


def test_send_offsets_that_hang_replace_the_producer_and_fail_the_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """librdkafka #5456/#5511: the call blocks past its own timeout."""
    monkeypatch.setattr(transactions, "OFFSETS_DEADLINE", 0.2)
    hang = threading.Event()
    txn, replaced = fake_transactions(FakeProducer(hang))
    try:
        with pytest.raises(KafkaException) as raised:
            txn.send_offsets([], object())
    finally:
        hang.set()
    assert raised.value.args[0].txn_requires_abort()
    assert replaced == ["new producer"]
