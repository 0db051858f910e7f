"""The detection processor: observations in, drift alerts and model state out.

One :class:`~detectors.bank.DetectorBank` per model, fed the observations the join processor
forwarded (predictions for the data signals, joined outcomes for the concept signals), in the
order of the model's ``observations`` partition. For each record it checks that the value is an
observation of the model it is keyed by (anything else is dead-lettered: the topic is open to
anyone with access), applies it, and appends each alert to ``alerts`` (keyed by model id).

State per model (:class:`ModelDetection`) is the bank and, for a runtime that re-delivers
records after a crash, the identities of the last ``dedupe_window`` observations it applied, so
one read again is skipped (``replayed_observations``). The runtime saves the snapshots of the
models that changed (:meth:`DetectProcessor.take_snapshots`) where it keeps state, and gives
them back through ``load``. :class:`PublishedAlerts` is the other at-least-once safeguard: the
alert ids already on the alerts topic, so a bank restored from older state does not publish an
alert twice.

>>> from datetime import UTC, datetime, timedelta
>>> from detectors.join import JoinedOutcome
>>> from pipeline.observations import encode_observation
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> def outcome(i, error):
...     return JoinedOutcome(request_id=str(i), model_id="m", model_version="1",
...         prediction_time=t + timedelta(seconds=i), label_time=t + timedelta(seconds=i),
...         prediction=1, label=1 - int(error), task="classification", error=error, score=None)
>>> detect, effects = DetectProcessor(DetectorConfig()), Effects()
>>> for i in range(3000):
...     value = encode_observation(outcome(i, float(i > 2000 or i % 10 == 0)))
...     detect.process(InputRecord("observations", 0, i, b"m", value), effects)
>>> sorted({a.detector for a in effects.alerts}), effects.outputs[0].stream
(['adwin', 'page_hinkley'], 'alerts')
>>> len(detect.take_snapshots()), detect.take_snapshots()
(1, [])
"""

from __future__ import annotations

import hashlib
import pickle
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from detectors.bank import DetectorBank
from detectors.config import DetectorConfig
from detectors.join import JoinedOutcome
from pipeline.edge import dead_letter
from pipeline.effects import Effects, InputRecord, Observation
from pipeline.join import partition_tag
from pipeline.observations import decode_observation
from schemas.codec import encode
from schemas.events import DriftAlert

_STATE_FORMAT = 1


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


@dataclass
class ModelDetection:
    """A model's bank and (at-least-once runtimes) the identities of the observations it
    applied: saved and restored together."""

    bank: DetectorBank
    recent: RecentIdentities | None

    def snapshot(self) -> bytes:
        identities = [] if self.recent is None else list(self.recent._order)
        return pickle.dumps(
            (_STATE_FORMAT, self.bank.snapshot(), identities),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(cls, data: bytes, dedupe_window: int | None) -> ModelDetection:
        """The saved state (only snapshots this deployment wrote: it is unpickled)."""
        state_format, bank, identities = pickle.loads(data)
        if state_format != _STATE_FORMAT:
            raise ValueError(f"not a detection snapshot of format {_STATE_FORMAT}")
        recent = None
        if dedupe_window is not None:
            recent = RecentIdentities(dedupe_window)
            for identity in identities:
                recent.add(identity)
        return cls(DetectorBank.restore(bank), recent)

    def observe(self, observation: Observation) -> list[DriftAlert] | None:
        """Apply one observation; its alerts, or None when it was applied before."""
        if self.recent is not None and not self.recent.add(observation_identity(observation)):
            return None
        if isinstance(observation, JoinedOutcome):
            return self.bank.observe_outcome(observation)
        return self.bank.observe_prediction(observation)


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
        A model's saved snapshot, or None for a model not seen before.
    """

    def __init__(
        self,
        config: DetectorConfig,
        *,
        dedupe_window: int | None = None,
        load: Callable[[str], bytes | None] = lambda _model_id: None,
    ) -> None:
        self.config = config
        self.dedupe_window = dedupe_window
        self.load = load
        self.models: dict[str, ModelDetection] = {}
        self.partitions: dict[str, int] = {}
        self._changed: set[str] = set()

    @property
    def banks(self) -> dict[str, DetectorBank]:
        return {model_id: model.bank for model_id, model in self.models.items()}

    def model(self, model_id: str, partition: int) -> ModelDetection:
        """The model's state: in memory, restored from its snapshot, or new."""
        model = self.models.get(model_id)
        if model is None:
            snapshot = self.load(model_id)
            if snapshot:
                model = ModelDetection.restore(snapshot, self.dedupe_window)
            else:
                recent = (
                    None if self.dedupe_window is None else RecentIdentities(self.dedupe_window)
                )
                model = ModelDetection(
                    DetectorBank(model_id, self.config.for_model(model_id)), recent
                )
            self.models[model_id] = model
        self.partitions[model_id] = partition
        return model

    def process(self, record: InputRecord, effects: Effects) -> None:
        """Check, decode and apply one ``observations`` record; publish what it raised."""
        fired = self.check_and_observe(record, effects)
        if fired:
            self.publish(fired, effects, record.partition)

    def check_and_observe(self, record: InputRecord, effects: Effects) -> list[DriftAlert]:
        """Apply one ``observations`` record (dead-lettered if it is not a valid observation of
        the model it is keyed by); the alerts it raised, not published yet."""
        source = partition_tag("o", record.partition)
        try:  # only the join processor writes here, but the topic is open to anyone with access
            if record.key is None:
                raise ValueError("message has no key; observations are keyed by model id")
            observation = decode_observation(record.value or b"")
            if observation.model_id.encode() != record.key:
                raise ValueError(f"keyed {record.key!r} but of model {observation.model_id!r}")
        except ValueError as exc:
            dead_letter(record, f"observation: {exc}".splitlines()[0], effects, source)
            return []
        return self.observe(observation, record.partition, effects)

    def observe(
        self, observation: Observation, partition: int, effects: Effects
    ) -> list[DriftAlert]:
        """Apply one observation of ``partition`` (once); the alerts it raised, not published."""
        model_id = observation.model_id
        fired = self.model(model_id, partition).observe(observation)
        if fired is None:
            effects.count(None, "replayed_observations", source=partition_tag("o", partition))
            return []
        self._changed.add(model_id)
        effects.changed_models.add(model_id)
        return fired

    def publish(self, alerts: Iterable[DriftAlert], effects: Effects, partition: int) -> None:
        """Send alerts to the alerts stream (keyed by model id) and count them."""
        for alert in alerts:
            effects.emit("alerts", alert.model_id.encode(), encode(alert))
            effects.alerts.append(alert)
            effects.count(alert.model_id, "alerts", source=partition_tag("o", partition))

    def take_snapshots(self) -> list[tuple[int, str, bytes]]:
        """``(partition, model id, snapshot)`` of every model changed since the last call."""
        snapshots = [
            (self.partitions[model_id], model_id, self.models[model_id].snapshot())
            for model_id in sorted(self._changed)
            if model_id in self.models
        ]
        self._changed.clear()
        return snapshots

    def revoke(self, partitions: Iterable[int] | None = None) -> None:
        """Drop the models of ``partitions`` (all when None); restored through ``load`` if they
        come back. Take their snapshots first."""
        gone = (
            set(self.models)
            if partitions is None
            else {model_id for model_id, p in self.partitions.items() if p in set(partitions)}
        )
        for model_id in gone:
            self.models.pop(model_id, None)
            self.partitions.pop(model_id, None)
            self._changed.discard(model_id)


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
