"""Join predictions with their labels by ``request_id``, exactly once, in event time.

The join is one pure function, :func:`join_step`, from the stored :class:`JoinEntry` of a
request (or ``None``) and one event to the entry to store next and at most one
:class:`JoinedOutcome`. :class:`JoinBuffer` applies it to any ``MutableMapping`` — a ``dict``
in the offline replay and the tests, a Faust table (with its changelog) in the worker — so
both join identically.

Either side may arrive first. When the second side arrives the entry becomes a *done marker*
that swallows redelivered or duplicated events of either side until it expires, so each
``request_id`` yields one outcome however often its events are delivered (within the TTL).

A worker that crashes re-reads its input from the last committed offset, while some of the
entries it wrote after that offset may already be stored. Events may therefore carry their
*position* (topic, partition and offset, as an opaque string), which the entry remembers for
each side: an event whose position is the one stored for its side is that very event read
again, and the step returns what it returned the first time (the outcome included, rebuilt
from the side the done marker keeps), flagged ``replayed``. A copy of an event at another
position stays a duplicate.

Time is event time. The buffer's *watermark* is the earlier of the latest prediction time and
the latest label time it has seen (nothing expires before both sides were seen), and an entry
expires once it is more than ``ttl_seconds`` older than the watermark. Taking the earlier side
matters when a worker catches up a backlog: it reads the two topics at different speeds, and
the latest prediction may be an hour ahead of the labels still waiting to be read. Expired
predictions and orphan labels are counted, never dropped silently.

>>> from datetime import datetime, timedelta, timezone
>>> from schemas.events import LabelEvent, PredictionEvent
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> prediction = PredictionEvent(request_id="r1", model_id="m", model_version="1",
...     timestamp=t0, features={}, prediction="cat")
>>> label = LabelEvent(request_id="r1", model_id="m", timestamp=t0 + timedelta(seconds=5),
...     label="dog")
>>> buffer = JoinBuffer({}, ttl_seconds=60, max_pending=1000)
>>> buffer.offer(label).note, buffer.offer(prediction).outcome.error, buffer.offer(label).note
('pending', 1.0, 'duplicate')
>>> counts = buffer.counts
>>> counts.predictions, counts.labels, counts.joined, counts.duplicates
(1, 2, 1, 1)
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from schemas.events import LabelEvent, PredictionEvent

OutcomeValue = int | float | str
"""A class label (string or integer) or a regression value, as in the event contracts."""

Task = Literal["classification", "regression"]

JoinNote = Literal["pending", "joined", "duplicate"]
"""What a step did: stored one side to wait, emitted the outcome, or ignored a duplicate."""

# The values below are made for every event and never changed once made; they are not
# ``frozen`` only because a frozen dataclass's ``__init__`` sets each field through
# ``object.__setattr__``: 1.3 µs an event of the replay's 23 (narrow stream, measured).


@dataclass(slots=True)
class PendingPrediction:
    """The fields of a :class:`~schemas.events.PredictionEvent` the outcome needs."""

    model_id: str
    model_version: str
    timestamp: datetime
    prediction: OutcomeValue
    score: float | None


@dataclass(slots=True)
class PendingLabel:
    """The fields of a :class:`~schemas.events.LabelEvent` the outcome needs."""

    model_id: str
    timestamp: datetime
    label: OutcomeValue


@dataclass(slots=True)
class JoinEntry:
    """The stored join state of one ``request_id``.

    Pending: exactly one of ``prediction`` / ``label`` is set and ``done_at`` is ``None``.
    Done marker: ``done_at`` is the event time of the match; when the events had positions it
    keeps the side that came first (to rebuild the outcome for a replay), else no side.
    ``prediction_at`` / ``label_at`` are the positions of the events that gave each side.
    """

    prediction: PendingPrediction | None = None
    label: PendingLabel | None = None
    done_at: datetime | None = None
    prediction_at: str | None = None
    label_at: str | None = None

    @property
    def since(self) -> datetime:
        """The event time the entry's TTL counts from: the match, or the pending side."""
        if self.done_at is not None:
            return self.done_at
        if self.prediction is not None:
            return self.prediction.timestamp
        if self.label is not None:
            return self.label.timestamp
        raise ValueError("an empty JoinEntry has no event time")


@dataclass(slots=True)
class JoinedOutcome:
    """A prediction with its ground truth: the input of the concept-drift signals.

    ``error`` is ``0.0``/``1.0`` (mismatch) for classification and the absolute error for
    regression. The task is regression when the prediction or the label is a float and
    both are numbers; integers and strings are class labels, compared exactly.
    """

    request_id: str
    model_id: str
    model_version: str
    prediction_time: datetime
    label_time: datetime
    prediction: OutcomeValue
    label: OutcomeValue
    task: Task
    error: float
    score: float | None


@dataclass(slots=True)
class JoinStep:
    """The result of :func:`join_step`: the entry to store and the outcome, if any.

    On a ``"duplicate"`` the entry is the unchanged input entry: nothing needs writing.
    """

    entry: JoinEntry
    outcome: JoinedOutcome | None
    note: JoinNote
    replayed: bool = False
    """The event was read again at the position it was first joined at (after a restart)."""


@dataclass(slots=True)
class JoinCounts:
    """Event counters of a :class:`JoinBuffer` (duplicates included in predictions/labels)."""

    predictions: int = 0
    labels: int = 0
    joined: int = 0
    duplicates: int = 0
    replayed: int = 0
    expired_predictions: int = 0
    orphan_labels: int = 0
    evicted: int = 0


ExpiryCount = Literal["expired_predictions", "orphan_labels"]


def expired_side(entry: JoinEntry) -> tuple[str, ExpiryCount]:
    """The model and the counter of an expired *pending* entry (as :meth:`JoinBuffer.expire`
    returns them): a prediction that never got its label, or a label that never got its
    prediction."""
    if entry.done_at is None and entry.prediction is not None:
        return entry.prediction.model_id, "expired_predictions"
    if entry.done_at is None and entry.label is not None:
        return entry.label.model_id, "orphan_labels"
    raise ValueError("a done marker is not a pending side")


def outcome_error(prediction: OutcomeValue, label: OutcomeValue) -> tuple[Task, float]:
    """The task and the error of one prediction against its label.

    >>> outcome_error("cat", "dog"), outcome_error(1, 1), outcome_error(2.5, 4)
    (('classification', 1.0), ('classification', 0.0), ('regression', 1.5))
    """
    numbers = not isinstance(prediction, str) and not isinstance(label, str)
    if numbers and (isinstance(prediction, float) or isinstance(label, float)):
        return "regression", abs(float(prediction) - float(label))
    return "classification", 0.0 if prediction == label else 1.0


def _joined(
    request_id: str,
    prediction: PendingPrediction,
    label: PendingLabel,
    first: Literal["prediction", "label"],
    prediction_at: str | None,
    label_at: str | None,
) -> JoinStep:
    task, error = outcome_error(prediction.prediction, label.label)
    outcome = JoinedOutcome(
        request_id=request_id,
        model_id=prediction.model_id,
        model_version=prediction.model_version,
        prediction_time=prediction.timestamp,
        label_time=label.timestamp,
        prediction=prediction.prediction,
        label=label.label,
        task=task,
        error=error,
        score=prediction.score,
    )
    positioned = prediction_at is not None and label_at is not None
    done = JoinEntry(
        prediction=prediction if positioned and first == "prediction" else None,
        label=label if positioned and first == "label" else None,
        done_at=max(prediction.timestamp, label.timestamp),
        prediction_at=prediction_at,
        label_at=label_at,
    )
    return JoinStep(entry=done, outcome=outcome, note="joined")


def _pending_prediction(event: PredictionEvent) -> PendingPrediction:
    return PendingPrediction(
        model_id=event.model_id,
        model_version=event.model_version,
        timestamp=event.timestamp,
        prediction=event.prediction,
        score=event.score,
    )


def _pending_label(event: LabelEvent) -> PendingLabel:
    return PendingLabel(model_id=event.model_id, timestamp=event.timestamp, label=event.label)


def _replay(
    entry: JoinEntry, event: PredictionEvent | LabelEvent, position: str | None
) -> JoinStep | None:
    """What ``event`` did the first time, if it is the event stored at ``position``."""
    is_prediction = isinstance(event, PredictionEvent)
    if position is None or position != (entry.prediction_at if is_prediction else entry.label_at):
        return None
    kept = entry.prediction if is_prediction else entry.label
    if entry.done_at is None or kept is not None:  # this event stored its side and waited
        return JoinStep(entry=entry, outcome=None, note="pending", replayed=True)
    if isinstance(event, PredictionEvent) and entry.label is not None:
        step = _joined(
            event.request_id,
            _pending_prediction(event),
            entry.label,
            "label",
            position,
            entry.label_at,
        )
    elif isinstance(event, LabelEvent) and entry.prediction is not None:
        step = _joined(
            event.request_id,
            entry.prediction,
            _pending_label(event),
            "prediction",
            entry.prediction_at,
            position,
        )
    else:
        return None  # a done marker written without positions keeps no side
    return replace(step, entry=entry, replayed=True)


def join_step(
    entry: JoinEntry | None, event: PredictionEvent | LabelEvent, position: str | None = None
) -> JoinStep:
    """Apply one event, read at ``position`` (optional), to the stored entry of its
    ``request_id`` (pure).

    The first event of a side is kept; a later event of a side already held, or any event
    after the match, is a ``"duplicate"`` (even if its content differs: first one wins) unless
    it is the very event stored for its side (same position): then the step is a replay.
    The outcome's model id and version are the prediction's.
    """
    if entry is not None:
        if (replayed := _replay(entry, event, position)) is not None:
            return replayed
        if entry.done_at is not None:
            return JoinStep(entry=entry, outcome=None, note="duplicate")
    if isinstance(event, PredictionEvent):
        if entry is not None and entry.prediction is not None:
            return JoinStep(entry=entry, outcome=None, note="duplicate")
        prediction = _pending_prediction(event)
        if entry is not None and entry.label is not None:
            return _joined(
                event.request_id, prediction, entry.label, "label", position, entry.label_at
            )
        pending = JoinEntry(prediction=prediction, prediction_at=position)
        return JoinStep(entry=pending, outcome=None, note="pending")
    if entry is not None and entry.label is not None:
        return JoinStep(entry=entry, outcome=None, note="duplicate")
    label = _pending_label(event)
    if entry is not None and entry.prediction is not None:
        return _joined(
            event.request_id, entry.prediction, label, "prediction", entry.prediction_at, position
        )
    return JoinStep(entry=JoinEntry(label=label, label_at=position), outcome=None, note="pending")


class JoinBuffer:
    """:func:`join_step` over a store, with event-time expiry and a size cap.

    Parameters
    ----------
    store
        Where the entries live, keyed by ``request_id``: a ``dict``, or a Faust table so the
        join state survives restarts through its changelog. The buffer is the only writer.
    ttl_seconds
        How long, in event time, a pending side waits for the other one and a done marker
        swallows duplicates. An entry expires when ``since + ttl < now`` (see ``expire``).
    max_pending
        The most entries (pending or done) the store may hold; past it the entries with the
        oldest event time are evicted and counted in ``counts.evicted``.

    The buffer keeps an in-memory index of the store by event time (a heap plus
    ``request_id -> since``). After a restart build a new buffer over the restored store and
    call :meth:`rebuild_index` once; the counters start again from zero.
    """

    def __init__(
        self, store: MutableMapping[str, JoinEntry], ttl_seconds: float, max_pending: int
    ) -> None:
        if ttl_seconds <= 0 or max_pending < 1:
            raise ValueError("ttl_seconds must be > 0 and max_pending >= 1")
        self.store = store
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_pending = max_pending
        self._latest: dict[type[PredictionEvent | LabelEvent], datetime] = {}
        self._counts = JoinCounts()
        self._since: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    @property
    def counts(self) -> JoinCounts:
        """A copy of the counters."""
        return replace(self._counts)

    def __len__(self) -> int:
        return len(self._since)

    @property
    def evicted(self) -> int:
        """Entries the cap has evicted so far (``counts.evicted`` without copying the counts)."""
        return self._counts.evicted

    @property
    def watermark(self) -> datetime | None:
        """The earlier of the latest prediction and label times seen (None until both were)."""
        return min(self._latest.values()) if len(self._latest) == 2 else None

    def rebuild_index(self) -> None:
        """Rebuild the expiry index (and the watermark, at least) from the store's entries."""
        self._since = {request_id: entry.since for request_id, entry in self.store.items()}
        self._heap = [(since, request_id) for request_id, since in self._since.items()]
        heapq.heapify(self._heap)
        for entry in self.store.values():
            if entry.done_at is None and entry.prediction is not None:
                self._saw(PredictionEvent, entry.prediction.timestamp)
            elif entry.done_at is None and entry.label is not None:
                self._saw(LabelEvent, entry.label.timestamp)

    def _saw(self, side: type[PredictionEvent | LabelEvent], timestamp: datetime) -> None:
        latest = self._latest.get(side)
        if latest is None or timestamp > latest:
            self._latest[side] = timestamp

    def offer(self, event: PredictionEvent | LabelEvent, position: str | None = None) -> JoinStep:
        """Join one event (read at ``position``, see :func:`join_step`), store the new entry,
        advance the watermark, enforce the cap."""
        if isinstance(event, PredictionEvent):
            self._counts.predictions += 1
        else:
            self._counts.labels += 1
        self._saw(type(event), event.timestamp)
        step = join_step(self.store.get(event.request_id), event, position)
        if step.replayed:
            self._counts.replayed += 1
            return step
        if step.note == "duplicate":
            self._counts.duplicates += 1
            return step
        if step.note == "joined":
            self._counts.joined += 1
        self.store[event.request_id] = step.entry
        self._index(event.request_id, step.entry.since)
        while len(self._since) > self.max_pending and (oldest := self._oldest()) is not None:
            self._counts.evicted += 1
            self._remove(oldest[1])
        return step

    def expire(self, now: datetime | None = None) -> list[tuple[str, JoinEntry]]:
        """Remove the entries older than the TTL at ``now`` (default: the watermark).

        Returns the expired *pending* entries (done markers vanish without a trace), having
        counted them in ``expired_predictions`` and ``orphan_labels``.
        """
        now = self.watermark if now is None else now
        if now is None:
            return []
        cutoff = now - self.ttl
        expired: list[tuple[str, JoinEntry]] = []
        while (oldest := self._oldest()) is not None and oldest[0] < cutoff:
            request_id = oldest[1]
            entry = self._remove(request_id)
            if entry.done_at is not None:
                continue
            if entry.prediction is not None:
                self._counts.expired_predictions += 1
            else:
                self._counts.orphan_labels += 1
            expired.append((request_id, entry))
        return expired

    def _index(self, request_id: str, since: datetime) -> None:
        known = self._since.get(request_id)
        self._since[request_id] = since
        if known is None or since < known:  # a later since: its heap item moves lazily
            heapq.heappush(self._heap, (since, request_id))

    def _oldest(self) -> tuple[datetime, str] | None:
        """The live ``(since, request_id)`` with the oldest event time. A heap item is at most
        its request's since: one whose since moved later goes back in at it, a stale one is
        dropped."""
        heap = self._heap
        while heap:
            since, request_id = heap[0]
            live = self._since.get(request_id)
            if live == since:
                return since, request_id
            if live is None or live < since:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (live, request_id))
        return None

    def _remove(self, request_id: str) -> JoinEntry:
        del self._since[request_id]
        return self.store.pop(request_id)
