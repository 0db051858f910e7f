"""The join: exactly one outcome per request with both sides, event-time TTL, the cap."""

from __future__ import annotations

import pickle
import random
from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.join_buffer import JoinBuffer, JoinEntry, join_step
from schemas.events import LabelEvent, PredictionEvent
from tests.factories import T0, label, prediction

sides = st.tuples(st.booleans(), st.booleans(), st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=150)
@given(
    requests=st.lists(sides, min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_any_interleaving_and_redelivery_joins_each_request_once(
    requests: list[tuple[bool, bool, int, int]], order: random.Random
) -> None:
    events: list[PredictionEvent | LabelEvent] = []
    for index, (has_prediction, has_label, prediction_copies, label_copies) in enumerate(requests):
        request_id = f"r{index}"
        if has_prediction:
            events += [prediction(request_id, index, "a")] * prediction_copies
        if has_label:
            events += [label(request_id, index + 1, "b" if index % 2 else "a")] * label_copies
    order.shuffle(events)
    buffer = JoinBuffer({}, ttl_seconds=3600, max_pending=1000)

    outcomes = [step.outcome for event in events if (step := buffer.offer(event)).outcome]

    joined = Counter(outcome.request_id for outcome in outcomes)
    both = {f"r{i}" for i, (p, lab, _, _) in enumerate(requests) if p and lab}
    assert joined == Counter(both)
    for outcome in outcomes:
        index = int(outcome.request_id[1:])
        assert outcome.error == (1.0 if index % 2 else 0.0)
        assert outcome.prediction_time == T0 + timedelta(seconds=index)
        assert outcome.label_time == T0 + timedelta(seconds=index + 1)
    counts = buffer.counts
    assert counts.joined == len(both)
    assert counts.predictions + counts.labels == len(events)
    assert counts.duplicates == len(events) - len(both) - len(buffer)


def test_join_step_is_pure_and_entries_pickle() -> None:
    first = join_step(None, prediction("r", 0, "cat"))
    assert first.note == "pending"
    assert first.outcome is None
    entry = pickle.loads(pickle.dumps(first.entry))
    assert entry == first.entry
    matched = join_step(entry, label("r", 30, "dog"))
    assert matched.note == "joined"
    assert matched.outcome is not None
    assert (matched.outcome.task, matched.outcome.error, matched.outcome.score) == (
        "classification",
        1.0,
        0.5,
    )
    assert matched.entry == JoinEntry(done_at=T0 + timedelta(seconds=30))
    again = join_step(matched.entry, prediction("r", 0, "cat"))
    assert (again.note, again.outcome, again.entry) == ("duplicate", None, matched.entry)


def test_regression_outcome_is_absolute_error() -> None:
    pending = join_step(None, label("r", 0)).entry
    event = prediction("r", 1).model_copy(update={"prediction": 2.5})
    outcome = join_step(pending, event).outcome
    assert outcome is not None
    assert (outcome.task, outcome.label) == ("classification", "a")
    numeric = join_step(None, LabelEvent(request_id="r", model_id="m", timestamp=T0, label=4))
    regression = join_step(numeric.entry, event).outcome
    assert regression is not None
    assert (regression.task, regression.error) == ("regression", 1.5)


def test_ttl_expiry_counts_expired_predictions_and_orphan_labels() -> None:
    buffer = JoinBuffer({}, ttl_seconds=60, max_pending=100)
    buffer.offer(prediction("p1", 0))
    buffer.offer(prediction("p2", 10))
    buffer.offer(label("l1", 20))
    buffer.offer(prediction("j1", 5))
    buffer.offer(label("j1", 25))  # done marker since t=25
    buffer.offer(prediction("p3", 100))  # the predictions are at 100, the labels still at 25
    assert buffer.expire() == []
    buffer.offer(label("l2", 100))  # both sides at 100: cutoff 40

    expired = buffer.expire()

    assert sorted(request_id for request_id, _ in expired) == ["l1", "p1", "p2"]
    counts = buffer.counts
    assert (counts.expired_predictions, counts.orphan_labels, counts.joined) == (2, 1, 1)
    assert set(buffer.store) == {"l2", "p3"}  # the done marker of j1 expired too, silently
    assert buffer.offer(label("p3", 130)).outcome is not None
    assert [r for r, _ in buffer.expire(now=T0 + timedelta(seconds=100 + 61))] == ["l2"]
    assert buffer.expire(now=T0 + timedelta(seconds=130 + 61)) == []
    assert len(buffer) == 0


def test_done_marker_swallows_redelivery_until_it_expires() -> None:
    buffer = JoinBuffer({}, ttl_seconds=60, max_pending=100)
    buffer.offer(prediction("r", 0))
    assert buffer.offer(label("r", 1)).note == "joined"
    assert buffer.offer(label("r", 1)).note == "duplicate"
    buffer.offer(prediction("other", 100))
    buffer.offer(label("another", 100))
    buffer.expire()
    assert "r" not in buffer.store
    assert buffer.offer(label("r", 1)).note == "pending"  # too late to recognise: waits


def test_a_done_marker_lives_a_ttl_from_its_later_side() -> None:
    """Its since moved from the prediction's time to the label's: it expires a TTL after the
    label, not after the prediction."""
    buffer = JoinBuffer({}, ttl_seconds=60, max_pending=100)
    buffer.offer(prediction("r", 0))
    assert buffer.offer(label("r", 50)).note == "joined"
    buffer.offer(prediction("other", 100))
    buffer.offer(label("another", 100))  # the watermark at 100: cutoff 40
    assert buffer.expire() == []
    assert "r" in buffer.store
    assert buffer.offer(label("r", 50)).note == "duplicate"
    buffer.expire(now=T0 + timedelta(seconds=111))  # cutoff 51
    assert "r" not in buffer.store


def test_max_pending_evicts_the_oldest_with_a_count() -> None:
    buffer = JoinBuffer({}, ttl_seconds=3600, max_pending=3)
    for second, request_id in [(5, "b"), (1, "a"), (9, "c"), (7, "d"), (8, "e")]:
        buffer.offer(prediction(request_id, second))
    assert sorted(buffer.store) == ["c", "d", "e"]
    assert buffer.counts.evicted == 2
    assert len(buffer) == 3


def test_rebuild_index_after_restart_continues() -> None:
    store: dict[str, JoinEntry] = {}
    before = JoinBuffer(store, ttl_seconds=60, max_pending=100)
    before.offer(prediction("old", 0))
    before.offer(prediction("fresh", 50))
    before.offer(label("joined", 40))
    before.offer(prediction("joined", 45))
    restored: dict[str, JoinEntry] = pickle.loads(pickle.dumps(store))

    after = JoinBuffer(restored, ttl_seconds=60, max_pending=100)
    after.rebuild_index()

    assert after.watermark is None  # no label is pending: the label side is unknown
    assert after.offer(prediction("joined", 45)).note == "duplicate"
    assert after.offer(label("fresh", 70)).outcome is not None
    assert after.watermark == T0 + timedelta(seconds=50)
    assert [request_id for request_id, _ in after.expire(T0 + timedelta(seconds=61))] == ["old"]
    assert after.counts.expired_predictions == 1
    assert sorted(after.store) == ["fresh", "joined"]


def test_the_same_event_read_again_does_what_it_did_the_first_time() -> None:
    waiting = join_step(None, prediction("r", 0, "cat"), "p0:7")
    matched = join_step(waiting.entry, label("r", 30, "dog"), "l0:3")
    assert matched.note == "joined"
    assert matched.outcome is not None

    again = join_step(matched.entry, label("r", 30, "dog"), "l0:3")
    assert (again.note, again.outcome, again.replayed) == ("joined", matched.outcome, True)
    assert again.entry == matched.entry
    first_side = join_step(matched.entry, prediction("r", 0, "cat"), "p0:7")
    assert (first_side.note, first_side.outcome, first_side.replayed) == ("pending", None, True)
    assert join_step(waiting.entry, prediction("r", 0, "cat"), "p0:7").replayed
    copy = join_step(matched.entry, label("r", 30, "dog"), "l0:9")
    assert (copy.note, copy.replayed) == ("duplicate", False)


@settings(max_examples=150)
@given(
    requests=st.lists(sides, min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
    crash=st.floats(0.0, 1.0),
)
def test_a_crash_with_any_writes_landed_loses_no_outcome_and_doubles_none(
    requests: list[tuple[bool, bool, int, int]], order: random.Random, crash: float
) -> None:
    """A worker dies after event ``k``: its store holds every write of the events up to the
    last commit ``c`` and, per request, any prefix of the later ones. Its successor re-reads
    from ``c``: every outcome first emitted after ``c`` comes again (it may not have reached
    Kafka), and none that was emitted before ``c``."""
    events: list[tuple[str, PredictionEvent | LabelEvent]] = []
    for index, (has_prediction, has_label, prediction_copies, label_copies) in enumerate(requests):
        request_id = f"r{index}"
        if has_prediction:
            events += [("p", prediction(request_id, index, "a"))] * prediction_copies
        if has_label:
            events += [("l", label(request_id, index + 1, "b"))] * label_copies
    order.shuffle(events)
    positioned = [(f"{topic}:{offset}", event) for offset, (topic, event) in enumerate(events)]
    crashed_at = round(crash * len(positioned))
    committed = order.randint(0, crashed_at)

    store: dict[str, JoinEntry] = {}
    writes: dict[str, list[JoinEntry]] = {}
    before_commit: set[str] = set()
    committed_writes: dict[str, int] = {}
    for n, (position, event) in enumerate(positioned[:crashed_at]):
        if n == committed:
            committed_writes = {request_id: len(h) for request_id, h in writes.items()}
        step = join_step(store.get(event.request_id), event, position)
        if step.note != "duplicate":
            store[event.request_id] = step.entry
            writes.setdefault(event.request_id, []).append(step.entry)
        if step.outcome is not None and n < committed:
            before_commit.add(step.outcome.request_id)
    if committed == crashed_at:
        committed_writes = {request_id: len(h) for request_id, h in writes.items()}
    landed: dict[str, JoinEntry] = {}
    for request_id, history in writes.items():
        keep = order.randint(committed_writes.get(request_id, 0), len(history))
        if keep:
            landed[request_id] = history[keep - 1]

    buffer = JoinBuffer(landed, ttl_seconds=3600, max_pending=1000)
    buffer.rebuild_index()
    after = [
        step.outcome.request_id
        for position, event in positioned[committed:]
        if (step := buffer.offer(event, position)).outcome is not None
    ]

    both = {f"r{i}" for i, (p, lab, _, _) in enumerate(requests) if p and lab}
    assert before_commit | set(after) == both
    assert not before_commit & set(after), "an outcome committed before the crash came again"
    assert len(after) == len(set(after))


def test_predictions_read_far_ahead_of_their_labels_do_not_expire() -> None:
    """A worker catching up a backlog reads the predictions topic an hour ahead of the labels:
    the labels' side holds the watermark back, so their predictions still wait for them."""
    buffer = JoinBuffer({}, ttl_seconds=60, max_pending=1000)
    buffer.offer(label("early", 0))
    for second in range(0, 3600, 10):
        buffer.offer(prediction(f"r{second}", second))
    assert buffer.expire() == []
    joined = [buffer.offer(label(f"r{second}", second + 5)) for second in range(0, 600, 10)]
    assert all(step.outcome is not None for step in joined)
    assert buffer.watermark == T0 + timedelta(seconds=595)
