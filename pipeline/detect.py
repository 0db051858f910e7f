"""The detection processor: observations in, drift alerts and model state out.

One :class:`~detectors.bank.DetectorBank` per model, fed the observations the join processor
forwarded (predictions for the data signals, joined outcomes for the concept signals), in the
order of the model's ``observations`` partition. For each record it checks that the value is an
observation of the model it is keyed by (anything else is dead-lettered: the topic is open to
anyone with access), applies it, and appends each alert to ``alerts`` (keyed by model id).

Each model's predictions and its outcomes go to its bank in event-time order, each kind
behind its own watermark (:class:`~pipeline.event_order.EventTimeOrder`, ``lateness_seconds``):
the order between a model's predictions and its outcomes is the order they come in, since
labels normally lag behind. An observation that comes after a later-stamped one of its kind was
applied is applied at once and counted in ``late_observations``. What a kind holds goes to the
bank when its watermark passes it, when the kind has been quiet for ``lateness_seconds`` of
wall time (:meth:`DetectProcessor.release_quiet`) or at the end of a replay
(:meth:`DetectProcessor.release_all`); :meth:`DetectProcessor.oldest_held` is the offset a
transactional runtime commits no further than, so a crash loses nothing held. A runtime that
re-delivers records instead (``hold=False``) applies each at once and counts one stamped more
than the lateness behind its kind's latest.

A model that stops sending while others go on is seen by the event-time clock across the
models of an ``observations`` partition (its latest prediction time, less the lateness): when
it passes a model's :attr:`~detectors.bank.DetectorBank.silence_deadline` (on the model's own
clock), the model's bank raises its silence alert (:meth:`~detectors.bank.DetectorBank.advance`),
stamped at the deadline, so the alert is the one its next prediction would raise, at any
batching (:meth:`DetectProcessor._check_silence`). Where a partition's clock stops (its models
all stopped) a runtime may vouch for more (:meth:`DetectProcessor.watch_clocks`): that the
stream is idle (each partition's clock goes on with the wall clock), or that it reads every
partition to about its end (the partitions' clocks are one).

State per model (:class:`ModelDetection`) is the bank, the watermarks and the last offset read
(so an observation read again after a crash is skipped if it was applied, held again if not)
and, for a runtime that re-delivers records after a crash, the identities of the last
``dedupe_window`` observations it applied, so one read again is skipped
(``replayed_observations``). It is saved in pieces: the bank's (one per signal and per tracked
feature, a few for the model as a whole: :meth:`~detectors.bank.DetectorBank.take_changed_pieces`)
and the processor's own; the runtime saves the pieces that changed
(:meth:`DetectProcessor.take_state_changes`) where it keeps state, and gives a model's pieces
back through ``load``. What :meth:`DetectProcessor.take` releases waits until
:meth:`DetectProcessor.apply` (or :meth:`~DetectProcessor.publish_applied`), which hands each
model's observations to its bank as one batch. :class:`PublishedAlerts` is the other
at-least-once safeguard: the alert ids already on the alerts topic, so a bank restored from
older state does not publish an alert twice.

>>> from datetime import UTC, datetime, timedelta
>>> from detectors.join_buffer import JoinedOutcome
>>> from pipeline.observations import encode_observation
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> def outcome(i, error):
...     return JoinedOutcome(request_id=str(i), model_id="m", model_version="1",
...         prediction_time=t + timedelta(seconds=i), label_time=t + timedelta(seconds=i),
...         prediction=1, label=1 - int(error), task="classification", error=error, score=None)
>>> detect, effects = DetectProcessor(DetectorConfig(), lateness_seconds=5), Effects()
>>> for i in range(3000):
...     value = encode_observation(outcome(i, float(i > 2000 or i % 10 == 0)))
...     detect.process(InputRecord("observations", 0, i, b"m", value), effects)
>>> sorted({a.detector for a in effects.alerts}), effects.outputs[0].stream
(['adwin', 'page_hinkley'], 'alerts')
>>> detect.models["m"].bank.outcomes, detect.oldest_held(0)  # the last 5 s wait
(2995, 2995)
>>> sorted({split_state_key(change.key)[1] for change in detect.take_state_changes()})[:3]
['bank', 'detect', 'signal/error_rate']
>>> detect.take_state_changes()
[]
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from detectors.bank import DetectorBank, SnapshotFormatError, decode_piece, encode_piece
from detectors.config import BankConfig, DetectorConfig
from detectors.join_buffer import JoinedOutcome
from detectors.volume import SILENCE_FLOOR_SECONDS
from pipeline.edge import dead_letter
from pipeline.effects import Effects, InputRecord, Observation, PartitionTag
from pipeline.event_order import EventTimeOrder, OrderKey
from pipeline.observations import decode_observation
from schemas.codec import encode
from schemas.events import DriftAlert

DEFAULT_LATENESS_SECONDS = 2.0
DETECT_PIECE = "detect"
"""The piece of a model's state that is the detection processor's own: watermarks, the last
offset read, the identities of the recent observations (at-least-once runtimes)."""


class StateChange(NamedTuple):
    """One piece of a model's state to save: under ``key`` (:func:`state_key`) in the store
    partition of the ``observations`` partition that owns the model; None: deleted."""

    partition: int
    key: str
    value: bytes | None


def state_key(model_id: str, piece: str) -> str:
    """Where a model's piece is stored (model ids never hold a ``/``)."""
    return f"{model_id}/{piece}"


def split_state_key(key: str) -> tuple[str, str]:
    """The model id and the piece name of a :func:`state_key`."""
    model_id, _, piece = key.partition("/")
    return model_id, piece


def observation_time(observation: Observation) -> datetime:
    """When an observation became known: a prediction's time, an outcome's later side's."""
    if isinstance(observation, JoinedOutcome):
        return max(observation.prediction_time, observation.label_time)
    return observation.timestamp


def observation_key(observation: Observation) -> OrderKey:
    """Where an observation goes in its kind's event-time order."""
    return observation_time(observation), observation.request_id


def observation_identity(observation: Observation) -> int:
    """8 bytes that tell one observation from another: its kind and request id."""
    kind = b"O" if isinstance(observation, JoinedOutcome) else b"P"
    digest = hashlib.blake2b(kind + observation.request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class RecentIdentities:
    """The last ``capacity`` observation identities a model applied (a bounded set)."""

    capacity: int
    _order: deque[int] = field(default_factory=deque)
    _members: set[int] = field(default_factory=set)

    def add(self, identity: int) -> bool:
        """Remember ``identity``; False if it is already among the recent ones."""
        if identity in self._members:
            return False
        self._order.append(identity)
        self._members.add(identity)
        while len(self._order) > self.capacity:
            self._members.discard(self._order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._order)


class KindOrder(EventTimeOrder[Observation]):
    """The event-time order of one kind of a model's observations (predictions or outcomes);
    ``hold=False`` applies each at once and only tells whether it is late."""

    def __init__(self, lateness: timedelta, hold: bool) -> None:
        super().__init__(lateness)
        self.hold = hold
        self.last_push = 0.0  # wall time (the processor's clock) of the last record pushed

    def take(self, observation: Observation, offset: int) -> tuple[bool, list[Observation]]:
        """Whether ``observation`` is late, and what goes to the bank now, in order."""
        at, request_id = observation_key(observation)
        if self.hold:
            return self.push(at, request_id, offset, observation)
        late = self.latest is not None and at < self.latest - self.lateness
        self.latest = at if self.latest is None else max(self.latest, at)
        return late, [observation]


ObservationKind = Literal["prediction", "outcome"]
KINDS: tuple[ObservationKind, ObservationKind] = ("prediction", "outcome")
"""Both kinds, in this order: a piece saved before the kinds were named keyed them by
``False`` and ``True``, which index this tuple."""


def kind_of(observation: Observation) -> ObservationKind:
    """``"outcome"`` for a joined outcome, ``"prediction"`` for a prediction."""
    return "outcome" if isinstance(observation, JoinedOutcome) else "prediction"


@dataclass
class ModelDetection:
    """A model's bank, the event-time order of each kind of its observations, the last offset
    read and (at-least-once runtimes) the identities of the observations it applied: saved and
    restored together (the held observations are read again instead)."""

    bank: DetectorBank
    recent: RecentIdentities | None
    orders: dict[ObservationKind, KindOrder]
    """The event-time order of each kind of its observations."""
    last_offset: int = -1

    @classmethod
    def new(
        cls, bank: DetectorBank, dedupe_window: int | None, lateness: timedelta, hold: bool
    ) -> ModelDetection:
        recent = None if dedupe_window is None else RecentIdentities(dedupe_window)
        return cls(bank, recent, {kind: KindOrder(lateness, hold) for kind in KINDS})

    def take_state_changes(self) -> dict[str, bytes]:
        """The pieces of its state that changed since the last call: the bank's, and its own
        (:data:`DETECT_PIECE`: watermarks, last offset, recent identities)."""
        pieces = self.bank.take_changed_pieces()
        pieces[DETECT_PIECE] = encode_piece(DETECT_PIECE, self._own_state())
        return pieces

    def _own_state(self) -> dict[str, Any]:
        def mark(order: KindOrder) -> tuple[str | None, tuple[str, str] | None]:
            latest, frontier = order.marks()
            return (
                None if latest is None else latest.isoformat(),
                None if frontier is None else (frontier[0].isoformat(), frontier[1]),
            )

        return {
            "identities": [] if self.recent is None else list(self.recent._order),
            "marks": {kind: mark(order) for kind, order in self.orders.items()},
            "last_offset": self.last_offset,
        }

    @classmethod
    def restore(
        cls,
        model_id: str,
        pieces: Mapping[str, bytes],
        config: BankConfig,
        dedupe_window: int | None,
        lateness: timedelta = timedelta(seconds=DEFAULT_LATENESS_SECONDS),
        hold: bool = True,
    ) -> ModelDetection:
        """The state saved in ``pieces`` (:class:`SnapshotFormatError` if they are of another
        format)."""
        own = decode_piece(DETECT_PIECE, pieces[DETECT_PIECE])
        bank = DetectorBank.from_pieces(model_id, pieces, config, arrival_order=not hold)
        model = cls.new(bank, dedupe_window, lateness, hold)
        model.last_offset = own["last_offset"]
        for saved_kind, (latest, frontier) in own["marks"].items():
            kind = KINDS[saved_kind] if isinstance(saved_kind, bool) else saved_kind  # saved before
            model.orders[kind].resume(
                (
                    None if latest is None else datetime.fromisoformat(latest),
                    None
                    if frontier is None
                    else (datetime.fromisoformat(frontier[0]), frontier[1]),
                )
            )
        if model.recent is not None:
            for identity in own["identities"]:
                model.recent.add(identity)
        return model

    def take(
        self, observation: Observation, offset: int, now: float
    ) -> tuple[bool, list[Observation]] | None:
        """Put one observation read at ``offset`` in its kind's order: whether it is late and
        what goes to the bank now; None when it was read again and was applied before."""
        order = self.orders[kind_of(observation)]
        if offset <= self.last_offset and order.applied(*observation_key(observation)):
            return None
        self.last_offset = max(self.last_offset, offset)
        order.last_push = now
        return order.take(observation, offset)

    def release(self, quiet_since: float | None = None) -> list[Observation]:
        """What the kinds hold (only those that got nothing since ``quiet_since``, when
        given), in event-time order."""
        released = [
            observation
            for order in self.orders.values()
            if quiet_since is None or order.last_push <= quiet_since
            for observation in order.drain()
        ]
        return sorted(released, key=observation_key)

    def oldest_held(self) -> int | None:
        """The smallest offset of a held observation (None: nothing held)."""
        offsets = [o for order in self.orders.values() if (o := order.oldest_offset()) is not None]
        return min(offsets, default=None)

    def quiet_from(self) -> float | None:
        """The earliest last push (wall time) of the kinds that hold something: from then on,
        one of them may go quiet (None: nothing held)."""
        return min((order.last_push for order in self.orders.values() if order.held), default=None)

    def fresh(self, observations: list[Observation]) -> list[Observation]:
        """The observations not applied before (at-least-once runtimes remember the recent
        ones; every one is fresh otherwise)."""
        if self.recent is None:
            return observations
        add = self.recent.add
        return [o for o in observations if add(observation_identity(o))]


class DetectProcessor:
    """The models of the observation partitions this worker holds.

    Parameters
    ----------
    config
        Detectors per model.
    dedupe_window
        For a runtime that re-delivers records: observations per model remembered to skip one
        applied already (None: a transactional runtime, nothing is delivered twice).
    load
        A model's saved state pieces by name ({} for a model not seen before).
    lateness_seconds
        How far behind the latest of its kind an observation may be stamped and still take its
        place in event-time order; also how long a quiet kind holds what it has (wall time).
    hold
        Whether to hold observations to reorder them (False: a runtime that cannot keep held
        records across a crash; late ones are then only counted).
    on_applied
        Called with a model's bank and the observations of each batch it applied (the
        replay's history).
    clock
        Wall time in seconds, for :meth:`release_quiet`.
    """

    def __init__(
        self,
        config: DetectorConfig,
        *,
        dedupe_window: int | None = None,
        load: Callable[[str], Mapping[str, bytes]] = lambda _model_id: {},
        lateness_seconds: float = DEFAULT_LATENESS_SECONDS,
        hold: bool = True,
        on_applied: Callable[[DetectorBank, list[Observation]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lateness_seconds < 0:
            raise ValueError("lateness_seconds must be >= 0")
        self.config = config
        self.dedupe_window = dedupe_window
        self.load = load
        self.lateness = timedelta(seconds=lateness_seconds)
        self.hold = hold
        self.on_applied = on_applied
        self.clock = clock
        self.models: dict[str, ModelDetection] = {}
        self.partitions: dict[str, int] = {}
        self._changed: set[str] = set()
        self._arrivals = itertools.count()  # offsets for observations handed over directly
        self._released: dict[str, list[Observation]] = {}  # what goes to the banks next
        self._late: dict[str, list[Observation]] = {}  # the late ones among them, by model
        self._fired: list[DriftAlert] = []  # alerts of models applied early (a silence check)
        self._clocks: dict[int, datetime] = {}  # per partition: the latest prediction time
        self._walls: dict[int, float] = {}  # per partition: ``clock()`` when its clock moved
        self._checks: dict[int, list[tuple[datetime, int, str]]] = {}  # per partition: a heap
        self._due: dict[str, datetime] = {}  # a model's next silence check, on its clock
        self._queued: dict[str, datetime] = {}  # the time of a model's live entry in the heap
        self._lags: dict[str, tuple[datetime, timedelta]] = {}  # a deadline's due, the lag
        self._floor = timedelta(seconds=SILENCE_FLOOR_SECONDS)
        self._order = itertools.count()  # ties in the heaps, in the order they were pushed
        self._quiet: list[tuple[float, int, str]] = []  # a heap: when a model may go quiet
        self._quiet_due: dict[str, float] = {}  # the due of a model's entry in that heap:
        # every model that holds something has one (:meth:`oldest_held` looks at those only)

    @property
    def banks(self) -> dict[str, DetectorBank]:
        return {model_id: model.bank for model_id, model in self.models.items()}

    @property
    def changed(self) -> bool:
        """Whether a model changed since the last :meth:`take_state_changes`."""
        return bool(self._changed)

    def model(self, model_id: str, partition: int, effects: Effects) -> ModelDetection:
        """The model's state: in memory, restored from its pieces, or new. State an older
        driftstream wrote in another format starts the model afresh, counted in
        ``detectors_reset``."""
        model = self.models.get(model_id)
        if model is None:
            config = self.config.for_model(model_id)
            if pieces := self.load(model_id):
                try:
                    model = ModelDetection.restore(
                        model_id, pieces, config, self.dedupe_window, self.lateness, self.hold
                    )
                except (SnapshotFormatError, KeyError):
                    effects.count(
                        model_id, "detectors_reset", source=PartitionTag.of_observations(partition)
                    )
            if model is None:
                bank = DetectorBank(model_id, config, arrival_order=not self.hold)
                model = ModelDetection.new(bank, self.dedupe_window, self.lateness, self.hold)
            self.models[model_id] = model
        self.partitions[model_id] = partition
        return model

    def process(self, record: InputRecord, effects: Effects) -> None:
        """Check, decode and apply one ``observations`` record; publish what it raised."""
        self.take_record(record, effects)
        self.publish_applied(effects)

    def take_record(self, record: InputRecord, effects: Effects) -> None:
        """Check and decode one ``observations`` record (dead-lettered if it is not a valid
        observation of the model it is keyed by) and :meth:`take` it."""
        source = PartitionTag.of_observations(record.partition)
        try:  # only the join processor writes here, but the topic is open to anyone with access
            if record.key is None:
                raise ValueError("message has no key; observations are keyed by model id")
            observation = decode_observation(record.value or b"")
            if observation.model_id.encode() != record.key:
                raise ValueError(f"keyed {record.key!r} but of model {observation.model_id!r}")
        except ValueError as exc:
            dead_letter(record, f"observation: {exc}".splitlines()[0], effects, source)
            return
        self.take(observation, record.partition, effects, record.offset)

    def observe(
        self,
        observation: Observation,
        partition: int,
        effects: Effects,
        offset: int | None = None,
    ) -> list[DriftAlert]:
        """Take one observation and apply what it released; the alerts, not published."""
        self.take(observation, partition, effects, offset)
        return self.apply(effects)

    def take(
        self,
        observation: Observation,
        partition: int,
        effects: Effects,
        offset: int | None = None,
    ) -> None:
        """Put one observation of ``partition`` read at ``offset`` (None: handed over directly,
        in order) in its model's event-time order; what that releases waits for
        :meth:`apply`."""
        model_id, source = observation.model_id, PartitionTag.of_observations(partition)
        model = self.model(model_id, partition, effects)
        taken = model.take(
            observation, next(self._arrivals) if offset is None else offset, self.clock()
        )
        if taken is None:
            effects.count(None, "replayed_observations", source=source)
            return
        late, released = taken
        if model_id not in self._quiet_due and (since := model.quiet_from()) is not None:
            self._schedule_quiet(model_id, since)
        if not isinstance(observation, JoinedOutcome):
            self._watch_silence(model, partition, observation.timestamp, effects)
        if late:
            self._late.setdefault(model_id, []).extend(released)
        self._released.setdefault(model_id, []).extend(released)
        self._changed.add(model_id)  # its order moved even if nothing reached the bank
        effects.changed_models.add(model_id)

    def apply(self, effects: Effects) -> list[DriftAlert]:
        """Apply what the models released, each model's as one batch; the alerts raised, not
        published yet."""
        released, self._released = self._released, {}
        fired, self._fired = self._fired, []
        for model_id, observations in released.items():
            fired += self._apply(model_id, observations, effects)
        return fired

    def publish_applied(self, effects: Effects) -> None:
        """:meth:`apply`, then publish the alerts."""
        for alert in self.apply(effects):
            self.publish([alert], effects, self.partitions[alert.model_id])

    def release_quiet(self, effects: Effects) -> None:
        """Apply and publish what the kinds that got nothing for ``lateness_seconds`` hold.
        Only the models whose time came are visited (a heap of when each may go quiet): a
        worker of thousands of models calls this every poll."""
        now = self.clock()
        quiet_since, later = now - self.lateness.total_seconds(), []
        while self._quiet and self._quiet[0][0] <= now:
            due, _, model_id = heapq.heappop(self._quiet)
            if self._quiet_due.get(model_id) != due:
                continue  # revoked since (and maybe back, with an entry of its own)
            del self._quiet_due[model_id]
            model = self.models[model_id]
            if released := model.release(quiet_since):
                self._released.setdefault(model_id, []).extend(released)
            if (since := model.quiet_from()) is not None:  # a kind pushed to since: not quiet
                later.append((model_id, since))
        for model_id, since in later:
            self._schedule_quiet(model_id, since)
        self.publish_applied(effects)

    def _schedule_quiet(self, model_id: str, since: float) -> None:
        due = since + self.lateness.total_seconds()
        self._quiet_due[model_id] = due
        heapq.heappush(self._quiet, (due, next(self._order), model_id))

    def release_all(self, effects: Effects) -> None:
        """Apply and publish everything held (the end of a replay)."""
        for model_id, model in list(self.models.items()):
            if released := model.release():
                self._released.setdefault(model_id, []).extend(released)
        self.publish_applied(effects)

    def oldest_held(self, partition: int) -> int | None:
        """The smallest offset of ``partition`` that a model holds (None: nothing held). Only
        the models with a quiet timer are looked at: a model that holds something has one."""
        partitions = self.partitions
        offsets = [
            o
            for model_id in self._quiet_due
            if partitions[model_id] == partition
            and (o := self.models[model_id].oldest_held()) is not None
        ]
        return min(offsets, default=None)

    def _apply(
        self, model_id: str, released: list[Observation], effects: Effects
    ) -> list[DriftAlert]:
        """Apply ``released`` to the model's bank as one batch."""
        model = self.models[model_id]
        source = PartitionTag.of_observations(self.partitions[model_id])
        self._changed.add(model_id)
        effects.changed_models.add(model_id)
        fresh = model.fresh(released)
        effects.count(None, "replayed_observations", len(released) - len(fresh), source=source)
        if late := self._late.pop(model_id, None):
            applied = {id(o) for o in fresh}
            effects.count(
                model_id, "late_observations", sum(id(o) in applied for o in late), source=source
            )
        if not fresh:
            return []
        alerts = model.bank.observe(fresh)
        if self.on_applied is not None:
            self.on_applied(model.bank, fresh)
        return alerts

    def publish(self, alerts: Iterable[DriftAlert], effects: Effects, partition: int) -> None:
        """Send alerts to the alerts stream (keyed by model id) and count them."""
        for alert in alerts:
            effects.emit("alerts", alert.model_id.encode(), encode(alert))
            effects.alerts.append(alert)
            effects.count(alert.model_id, "alerts", source=PartitionTag.of_observations(partition))

    def take_state_changes(self) -> list[StateChange]:
        """The state pieces of every model changed since the last call, keyed
        ``<model id>/<piece>`` (:func:`state_key`), with the partition that owns them."""
        changes = [
            StateChange(self.partitions[model_id], state_key(model_id, piece), value)
            for model_id in sorted(self._changed)
            if model_id in self.models
            for piece, value in self.models[model_id].take_state_changes().items()
        ]
        self._changed.clear()
        return changes

    def _watch_silence(
        self, model: ModelDetection, partition: int, time: datetime, effects: Effects
    ) -> None:
        """After a prediction of ``partition`` at ``time``: move the partition's clock, and
        check the models whose check is due. A model is checked when the clock (less the
        lateness) is :data:`~detectors.volume.SILENCE_FLOOR_SECONDS` past its latest
        prediction, and then at its bank's :attr:`~detectors.bank.DetectorBank.silence_deadline`
        (:meth:`_check_silence`), each on the model's own clock: the partition's, less how far
        the model's latest prediction came behind it (a model whose clock lags the others' is
        not silent for that)."""
        clock = self._clocks.get(partition)
        moved = clock is None or time > clock
        if clock is None or time > clock:
            self._clocks[partition] = clock = time
            self._walls[partition] = self.clock()
        latest = model.orders["prediction"].latest or time
        self._schedule(model.bank.model_id, partition, max(clock, latest) + self._floor)
        if moved:
            self._check_due(partition, clock - self.lateness, effects)

    def watch_clocks(self, effects: Effects, *, idle: bool, together: bool) -> None:
        """Check the models due on clocks the runtime vouches for; publish the alerts.

        ``idle``: the stream is idle (no record on its way, as the broker says): each
        partition's clock goes on with the wall clock from where its latest prediction left it
        (so models that all stopped are silent too). ``together``: this worker reads every
        partition, each to about its end: the partitions' clocks are one, the latest of them
        (so a model alone on its partition that stopped while others send is silent too)."""
        wall = self.clock()
        nows = {
            partition: clock + timedelta(seconds=wall - self._walls[partition] if idle else 0)
            for partition, clock in self._clocks.items()
        }
        if together and nows:
            nows = dict.fromkeys(nows, max(nows.values()))
        for partition, now in nows.items():
            self._check_due(partition, now - self.lateness, effects)
        self.publish_applied(effects)

    @property
    def watching(self) -> bool:
        """Whether a model's silence check is due some time (:meth:`watch_clocks` has work)."""
        return bool(self._queued)

    def _check_due(self, partition: int, now: datetime, effects: Effects) -> None:
        """Check the models of ``partition`` whose check is due before ``now``."""
        heap = self._checks.get(partition)
        while heap and heap[0][0] < now:
            when, _, other = heapq.heappop(heap)
            if self._queued.get(other) != when:
                continue  # a stale entry: the model was queued again earlier
            del self._queued[other]
            due = self._due.pop(other, None)
            if due is None or self.partitions.get(other) != partition:
                continue
            if due >= now:
                self._schedule(other, partition, due)
            else:
                self._check_silence(other, partition, due, now, effects)

    def _schedule(self, model_id: str, partition: int, due: datetime) -> None:
        """Check ``model_id``'s silence once ``partition``'s clock passes ``due``."""
        self._due[model_id] = due
        queued = self._queued.get(model_id)
        if queued is None or due < queued:
            self._queued[model_id] = due
            entry = (due, next(self._order), model_id)
            heapq.heappush(self._checks.setdefault(partition, []), entry)

    def _check_silence(
        self, model_id: str, partition: int, due: datetime, now: datetime, effects: Effects
    ) -> None:
        """Whether the model is silent at ``now`` on its own clock: what it holds of its
        predictions is let go (none can come before them in order any more: the clock is past
        them) and applied with what it released (a batch split the bank does not see), so its
        bank knows its latest prediction; then the bank decides from its own state
        (:meth:`~detectors.bank.DetectorBank.advance`), or says when to check again."""
        model = self.models.get(model_id)
        known = self._lags.pop(model_id, None)
        if model is None:
            return
        latest = model.orders["prediction"].latest
        if known is not None and known[0] == due:  # due at the bank's deadline, then
            lag = known[1]
        else:  # due after the latest prediction (when it came, on the clock) and the floor
            lag = due - self._floor - (latest or due)
        if model.orders["prediction"].held:
            self._released.setdefault(model_id, []).extend(model.orders["prediction"].drain())
        if released := self._released.pop(model_id, None):
            self._fired += self._apply(model_id, released, effects)
        if alerts := model.bank.advance(now - lag):
            self._fired += alerts
            self._changed.add(model_id)
            effects.changed_models.add(model_id)
        elif (deadline := model.bank.silence_deadline) is not None:
            self._lags[model_id] = (deadline + lag, lag)
            self._schedule(model_id, partition, deadline + lag)

    def revoke(self, partitions: Iterable[int] | None = None) -> None:
        """Drop the models of ``partitions`` (all when None), what they hold included (it is
        read again from the committed offsets); restored through ``load`` if they come back.
        Take their snapshots first."""
        gone = (
            set(self.models)
            if partitions is None
            else {model_id for model_id, p in self.partitions.items() if p in set(partitions)}
        )
        for model_id in gone:
            self.models.pop(model_id, None)
            self.partitions.pop(model_id, None)
            self._changed.discard(model_id)
            for watch in (self._due, self._queued, self._lags, self._quiet_due):
                watch.pop(model_id, None)
        for partition in set(self._clocks) if partitions is None else set(partitions):
            for clocks in (self._clocks, self._walls, self._checks):
                clocks.pop(partition, None)


class PublishedAlerts:
    """The alert ids already on the alerts topic, read once (``read``) at the first alert after
    an assignment, so an alert raised again from restored state is not published twice."""

    def __init__(self, read: Callable[[], Iterable[DriftAlert]]) -> None:
        self.read = read
        self._ids: dict[str, set[str]] | None = None

    @property
    def loaded(self) -> bool:
        return self._ids is not None

    def load(self) -> None:
        """Read the topic's recent alerts (blocking: a runtime may call it in a thread)."""
        ids: dict[str, set[str]] = {}
        for alert in self.read():
            ids.setdefault(alert.model_id, set()).add(alert.alert_id)
        self._ids = ids

    def unpublished(self, fired: list[DriftAlert]) -> list[DriftAlert]:
        """The alerts of ``fired`` not on the topic (:meth:`load` first)."""
        if self._ids is None:
            self.load()
        assert self._ids is not None
        return [a for a in fired if a.alert_id not in self._ids.get(a.model_id, set())]

    def forget(self) -> None:
        """After a rebalance: read again at the next alert."""
        self._ids = None
