"""All the detectors of one model: events in, drift alerts out, and a live summary.

A :class:`DetectorBank` turns prediction events into data signals and joined outcomes into
concept signals, runs each signal's configured detectors (:class:`SignalMonitor`), passes
their firings through the :class:`AlertPolicy` and returns ``DriftAlert`` objects. It does no
I/O: both runtimes and the offline replay feed it the same objects and get the same alerts.
``detected_at`` is the event time (the runtimes pass none either), so alerts and their
incidents are deterministic. Its summary holds the label-free
estimate of the model's accuracy, precision and recall (:mod:`detectors.calibration`) next
to the realised ones.

What must see every event in order (the traffic volume, label health, the score calibration,
the realised precision and recall) are signal sources (:mod:`detectors.sources`): the bank
builds the registered ones from its config and knows them only through that contract, their
hooks, signals, summary figures and state (each source its own piece, ``source/<family>``).

>>> import random
>>> from datetime import datetime, timedelta, timezone
>>> from detectors.join_buffer import JoinedOutcome
>>> rng = random.Random(1)
>>> bank = DetectorBank("fraud")
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> def outcome(i, error_rate):
...     wrong = rng.random() < error_rate
...     t = t0 + timedelta(seconds=i)
...     return JoinedOutcome(request_id=str(i), model_id="fraud", model_version="1",
...         prediction_time=t, label_time=t, prediction=int(wrong), label=0,
...         task="classification", error=float(wrong), score=None)
>>> alerts = [alert for i in range(4800)
...     for alert in bank.observe_outcome(outcome(i, 0.1 if i < 4000 else 0.3))]
>>> [(a.signal, a.detector, int((a.event_time - t0).total_seconds())) for a in alerts]
[('error_rate', 'page_hinkley', 4141), ('error_rate', 'adwin', 4159)]
>>> summary = bank.summary()
>>> summary.status, round(summary.error_rate, 2), summary.signals["error_rate"].status
('drift', 0.29, 'drift')
>>> summary.figures["precision"], summary.figures["recall"]  # all labels 0: no "1" to recall
(0.0, None)
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, TypeGuard, cast

from detectors.config import BankConfig
from detectors.join_buffer import JoinedOutcome
from detectors.monitor import Firing, Monitor, SignalMonitor, monitor_for, monitor_from_state
from detectors.policy import AlertPolicy
from detectors.signals import (
    ABS_ERROR,
    ERROR_RATE,
    ESTIMATED_ACCURACY,
    VOLUME,
    Column,
    FeatureQuality,
    PredictionSignals,
    Signal,
)
from detectors.sources import (
    SOURCES,
    AlertAnnotator,
    Figure,
    SignalSource,
    SilenceWatch,
    SourceColumns,
    implements,
)
from detectors.volume import Silence
from schemas.events import DriftAlert, PredictionEvent, WindowStats

Status = Literal["ok", "warning", "drift"]

Observation = PredictionEvent | JoinedOutcome


class SnapshotFormatError(ValueError):
    """A detector snapshot this build cannot continue from (written by another version)."""


@dataclass(frozen=True, slots=True)
class SignalSummary:
    """The live view of one signal: its estimate (the mean over the recent window; for a
    categorical signal, the distance of its recent shares from the reference) and detector
    statuses."""

    signal: str
    kind: Literal["concept", "data"]
    estimate: float
    n: int
    status: Status
    detectors: dict[str, Status]


@dataclass(frozen=True, slots=True)
class BankSummary:
    """The live view of one model (what the Redis writer stores).

    ``error_rate``/``accuracy`` (classification) and ``mean_absolute_error`` (regression) are
    over the last ``recent_window`` outcomes; ``status`` is the worst signal status.
    ``event_time`` is the latest time the bank has seen: a prediction's time, or the time an
    outcome became known. The ``estimated_accuracy`` is over the last ``recent_window``
    predictions, labelled or not, from their scores (None before the calibration is frozen, and
    for models without scores). ``quality`` holds each tracked feature's data-quality counts.
    ``figures`` are the signal sources' (:data:`~detectors.sources.FIGURES`): the realised
    ``precision`` and ``recall`` of the configured ``positive_label`` (None while undefined: no
    positive predicted, or none actual), their ``estimated_`` counterparts, ``late_for_volume``
    (predictions that came after their interval's volume was given out),
    ``labels_past_horizon`` (outcomes too late for ``label_coverage``) and
    ``label_horizon_seconds`` (how long after its prediction a label counts as arrived, learned
    from the model's delays: :mod:`detectors.label_health`).
    ``incident_id`` is the model's latest incident (None before any alert).
    """

    model_id: str
    model_version: str | None
    predictions: int
    outcomes: int
    error_rate: float | None
    accuracy: float | None
    mean_absolute_error: float | None
    status: Status
    last_alert_id: str | None
    signals: dict[str, SignalSummary]
    event_time: datetime | None = None
    estimated_accuracy: float | None = None
    quality: dict[str, FeatureQuality] = field(default_factory=dict)
    incident_id: str | None = None
    figures: dict[str, Figure] = field(default_factory=dict)


class DetectorBank:
    """The detectors, signal sources and alert policy of one model.

    Parameters
    ----------
    model_id
        The model this bank watches; events of other models are refused.
    config
        Detectors per signal and limits (default: :class:`BankConfig` defaults).
    arrival_order
        Its predictions come in arrival order, not event-time order (given to every signal
        source): the ``volume`` signal waits longer for late ones
        (:data:`~detectors.volume.ARRIVAL_ORDER_GRACE_SECONDS`) unless the config sets
        ``volume_grace_seconds``.

    Observations go in batches (:meth:`observe`): the signal sources (:data:`SOURCES
    <detectors.sources.SOURCES>`: traffic, label health, calibration, rates) take them one by
    one, then each signal's values go to its monitor as one column. The alerts are the ones
    one observation at a time would give, in the same order.
    """

    def __init__(
        self, model_id: str, config: BankConfig | None = None, *, arrival_order: bool = False
    ) -> None:
        self.model_id = model_id
        self.config = config or BankConfig()
        self.model_version: str | None = None
        self.predictions = 0
        self.outcomes = 0
        self._signals = PredictionSignals(
            self.config.max_feature_signals,
            self.config.max_class_signals,
            self.config.quality_reference,
        )
        self._monitors: dict[str, Monitor] = {}
        self._ranks: dict[str, int] = {}  # a signal's place among the monitors (their order)
        self._policy = AlertPolicy(
            model_id, self.config.alert_cooldown_events, self.config.incident_gap_seconds
        )
        self._use_sources(
            [source.for_bank(self.config, arrival_order=arrival_order) for source in SOURCES]
        )
        self._event_time: datetime | None = None
        self._changed: set[str] = set(self._sources)  # saved at first, then as they take events
        self._changed_signals: set[str] = set()  # their pieces' names are made when taken

    def _use_sources(self, sources: Sequence[SignalSource]) -> None:
        """Take ``sources``: their hooks by kind, and their signals' columns (then the
        concept signals of outcomes) in the order one observation's values come in."""
        self._sources = {source.name: source for source in sources}
        self._on_prediction = [s.on_prediction for s in sources if s.on_prediction is not None]
        self._on_outcome = [s.on_outcome for s in sources if s.on_outcome is not None]
        self._prediction_pieces = {s.name for s in sources if s.on_prediction is not None}
        self._outcome_pieces = {s.name for s in sources if s.on_outcome is not None}
        self._annotators = [
            cast(AlertAnnotator, s) for s in sources if implements(s, AlertAnnotator)
        ]
        watches = [s for s in sources if implements(s, SilenceWatch)]  # the traffic volume
        self._watch = cast(SilenceWatch, watches[0]) if watches else None
        self._watch_piece = watches[0].name if watches else BANK_PIECE
        self._found: list[Silence] = [] if self._watch is None else self._watch.found
        self._revealed: list[tuple[int, str | None, Silence]] = []
        for annotator in self._annotators:
            annotator.bind(self._sources)
        self._tail_signals = [
            *(signal for source in sources for signal in source.signals),
            *_OUTCOME_SIGNALS,
        ]

    def observe_prediction(
        self, event: PredictionEvent, detected_at: datetime | None = None
    ) -> list[DriftAlert]:
        """Update the data signals with one prediction; the data-drift alerts it raised."""
        return self.observe([event], detected_at)

    def observe_outcome(
        self, outcome: JoinedOutcome, detected_at: datetime | None = None
    ) -> list[DriftAlert]:
        """Update the concept signal with one joined outcome; the concept-drift alerts.

        The alert's ``event_time`` is the prediction's time; ``detected_at`` defaults to the
        time the outcome became known (the later of prediction and label time).
        """
        return self.observe([outcome], detected_at)

    def observe(
        self, observations: Sequence[Observation], detected_at: datetime | None = None
    ) -> list[DriftAlert]:
        """Apply a batch of observations (predictions and joined outcomes, in order); the
        alerts they raised. An alert's ``event_time`` is its observation's time (a
        prediction's, an outcome's prediction time); ``detected_at``, unless given, the time
        its observation became known."""
        columns, among = self._columns(observations)
        fired: list[tuple[int, int, int, Firing]] = []
        for rank, column in enumerate(columns):
            if column.values:
                monitor = self._monitor(column.signal)
                name = column.signal.name
                if isinstance(monitor, SignalMonitor) and monitor.defer(column.values):  # type: ignore[arg-type]
                    self._saw_signal(name, counted=monitor.n > len(column.values), still=True)
                    continue  # zeros only, counted: no detector to run
                counted = _deferring(monitor) and monitor.n > 0  # its piece is written
                for index, firing in monitor.update_many(column.values):  # type: ignore[arg-type]
                    at = column.at[index]
                    if among is not None and rank < among.columns:
                        at = among.positions[at]
                    fired.append((at, rank, index, firing))
                self._saw_signal(name, counted=counted, still=_deferring(monitor))
        revealed, self._revealed = self._revealed, []
        silences = {at: (version, silence) for at, version, silence in revealed}
        fired += [(at, -1, 0, _silence_firing(silence)) for at, _, silence in revealed]
        fired.sort(key=lambda item: item[:3])
        alerts: list[DriftAlert] = []
        for at, rank, _index, firing in fired:
            if rank < 0:  # the silence that this observation revealed, before it
                version, silence = silences[at]
                alerts.append(self._silence_alert(firing, silence, version, detected_at))
                continue
            observation = observations[at]
            if isinstance(observation, JoinedOutcome):
                version, event_time = observation.model_version, observation.prediction_time
                known = max(observation.prediction_time, observation.label_time)
            else:
                version, event_time = observation.model_version, observation.timestamp
                known = observation.timestamp
            alert = self._policy.consider(
                firing, firing.observed, version, event_time, detected_at or known
            )
            if alert is not None:
                for annotator in self._annotators:  # the explanation of a concept alert
                    alert = annotator.annotate(firing, alert)
                alerts.append(alert)
        for annotator in self._annotators:
            annotator.settle()
        return alerts

    @property
    def silence_deadline(self) -> datetime | None:
        """When the model is silent unless a prediction comes (the traffic volume's
        :class:`~detectors.volume.Silence`); None while its rate is not learned, or when this
        gap was alerted already."""
        deadline = None if self._watch is None else self._watch.silence_deadline()
        return None if deadline is None else datetime.fromtimestamp(deadline, UTC)

    def advance(self, clock: datetime, detected_at: datetime | None = None) -> list[DriftAlert]:
        """Event time across models reached ``clock`` (a clock other than this model's own
        predictions: the detection processor's): the alert of the silence it reveals, if the
        model's :attr:`silence_deadline` is before it. The alert is the one the model's next
        prediction would raise: stamped at the deadline, whatever the clock."""
        silence = None if self._watch is None else self._watch.silence_at(clock.timestamp())
        if silence is None:
            return []
        assert self._watch is not None
        alert = self._silence_alert(
            _silence_firing(silence), silence, self.model_version, detected_at
        )
        for annotator in self._annotators:
            annotator.settle()
        self._changed |= {BANK_PIECE, self._watch_piece}
        return [alert]

    def _silence_alert(
        self,
        firing: Firing,
        silence: Silence,
        version: str | None,
        detected_at: datetime | None,
    ) -> DriftAlert:
        """The alert of a silence: on ``volume``, detector ``silence``, at the moment the gap
        became one (event time and, unless given, ``detected_at``); one per silence, so no
        cooldown."""
        at = datetime.fromtimestamp(silence.at, UTC)
        assert version is not None  # a silence follows intervals of predictions
        alert = self._policy.consider(
            firing, firing.observed, version, at, detected_at or at, cooldown=False
        )
        assert alert is not None
        for annotator in self._annotators:
            alert = annotator.annotate(firing, alert)
        return alert

    def apply(self, observations: Sequence[Observation]) -> list[Column]:
        """Count a batch of observations and take them one by one through the signal sources
        (:mod:`detectors.sources`); every signal's column of values, which :meth:`observe`
        feeds to the monitors (``at``: the index of the observation in ``observations``), in
        the order one observation's values come in."""
        columns, among = self._columns(observations)
        if among is None:
            return columns
        return [
            Column(c.signal, c.values, _Among(among.positions, c.at)) if rank < among.columns else c
            for rank, c in enumerate(columns)
        ]

    def _columns(
        self, observations: Sequence[Observation]
    ) -> tuple[list[Column], _PredictionColumns | None]:
        """:meth:`apply`'s columns, those of the predictions with their ``at`` among the
        predictions when the batch held outcomes too (:meth:`observe` maps the few it needs,
        at firings, instead of wrapping every column of every batch)."""
        predictions: list[PredictionEvent] = []
        at_prediction: list[int] = []
        tail = SourceColumns(self._tail_signals)
        emit = tail.emit
        found, revealed = self._found, []
        on_prediction, on_outcome = self._on_prediction, self._on_outcome
        outcomes_before = self.outcomes
        for index, observation in enumerate(observations):
            if observation.model_id != self.model_id:
                self._check_model(observation.model_id)
            tail.at = index
            if isinstance(observation, JoinedOutcome):
                self.outcomes += 1
                self._saw(max(observation.prediction_time, observation.label_time))
                for hook in on_outcome:
                    hook(observation, emit)
                concept = ERROR_RATE if observation.task == "classification" else ABS_ERROR
                emit(concept, observation.error)
                continue
            self.predictions += 1
            version, self.model_version = self.model_version, observation.model_version
            self._saw(observation.timestamp)
            predictions.append(observation)
            at_prediction.append(index)
            for prediction_hook in on_prediction:
                prediction_hook(observation, emit)
            if found:  # this prediction came after its model's silence: the silence's alert
                revealed += [(index, version, silence) for silence in found]
                found.clear()
        columns = self._signals.columns(predictions) if predictions else []
        among = None
        if len(predictions) < len(observations):  # ``at`` of a prediction column: among them
            among = _PredictionColumns(len(columns), at_prediction)
        columns += tail.columns()
        self._revealed = revealed
        if observations:
            self._changed.add(BANK_PIECE)
            if predictions:
                self._changed |= self._prediction_pieces
            if self.outcomes != outcomes_before:
                self._changed |= self._outcome_pieces
        return columns, among

    def summary(self) -> BankSummary:
        """The live state of every signal and of the model."""
        signals = {name: self._signal_summary(monitor) for name, monitor in self._monitors.items()}
        statuses = {summary.status for summary in signals.values()}
        error_rate = self._estimate(ERROR_RATE)
        figures: dict[str, Figure] = {}  # the sources': precision, late_for_volume, ...
        for source in self._sources.values():
            figures.update(source.summary())
        return BankSummary(
            model_id=self.model_id,
            model_version=self.model_version,
            predictions=self.predictions,
            outcomes=self.outcomes,
            error_rate=error_rate,
            accuracy=None if error_rate is None else 1.0 - error_rate,
            mean_absolute_error=self._estimate(ABS_ERROR),
            status="drift" if "drift" in statuses else "warning" if "warning" in statuses else "ok",
            last_alert_id=self._policy.last_alert_id,
            incident_id=self._policy.incident_id,
            signals=signals,
            event_time=self._event_time,
            estimated_accuracy=self._estimate(ESTIMATED_ACCURACY),
            quality={name: replace(counts) for name, counts in self._signals.quality.items()},
            figures=figures,
        )

    # -- state ---------------------------------------------------------------------------

    def state_pieces(self) -> dict[str, bytes]:
        """The whole state as pieces: name -> bytes, for :meth:`from_pieces`."""
        self._changed = self._all_pieces()
        return self.take_changed_pieces()

    def take_changed_pieces(self) -> dict[str, bytes]:
        """The pieces that changed since the last call (all of a new bank's)."""
        changed, self._changed = self._changed, set()
        changed |= {SIGNAL_PIECE + name for name in self._changed_signals}
        changed |= {FEATURE_PIECE + name for name in self._signals.changed}
        self._changed_signals.clear()
        self._signals.changed.clear()
        return {name: encode_piece(name, self._piece(name)) for name in sorted(changed)}

    @classmethod
    def from_pieces(
        cls,
        model_id: str,
        pieces: Mapping[str, bytes],
        config: BankConfig | None = None,
        *,
        arrival_order: bool = False,
    ) -> DetectorBank:
        """A bank that continues exactly where the one that wrote ``pieces`` stopped, with
        this ``config``'s limits and policy settings (a signal keeps the detectors it had).

        A piece of another format version raises :class:`SnapshotFormatError`.
        """
        bank = cls(model_id, config, arrival_order=arrival_order)
        state = decode_piece(BANK_PIECE, pieces[BANK_PIECE])
        bank.model_version = state["model_version"]
        bank.predictions, bank.outcomes = state["predictions"], state["outcomes"]
        event_time = state["event_time"]
        bank._event_time = None if event_time is None else datetime.fromisoformat(event_time)
        bank._policy.restore(state["policy"])
        features = [decode_piece(n, p) for n, p in pieces.items() if n.startswith(FEATURE_PIECE)]
        bank._signals.restore(state["signals"], features)
        saved = set(state["sources"])  # a source registered since starts afresh
        bank._use_sources(
            [
                type(source).from_state(decode_piece(name, pieces[name]))
                if name in saved
                else source
                for name, source in bank._sources.items()
            ]
        )
        bank._changed = {name for name in bank._sources if name not in saved}
        signals = [decode_piece(n, p) for n, p in pieces.items() if n.startswith(SIGNAL_PIECE)]
        for signal_state in sorted(signals, key=lambda state: state["rank"]):
            signal = Signal(*signal_state["signal"])
            bank._monitors[signal.name] = monitor_from_state(signal, signal_state["monitor"])
            bank._ranks[signal.name] = signal_state["rank"]
        monitors = bank._monitors
        bank._signals.resume_references(lambda s: m.n if (m := monitors.get(s.name)) else 0)
        if DEFERRED_PIECE in pieces:  # a format 7 snapshot has the counts in the signal pieces
            named = {rank: name for name, rank in bank._ranks.items()}
            for rank, zeros in decode_piece(DEFERRED_PIECE, pieces[DEFERRED_PIECE]).items():
                monitor = bank._monitors.get(named.get(rank, ""))
                if monitor is not None and _deferring(monitor):  # else its own piece is newer
                    monitor.resume_deferring(zeros)
        return bank

    def _all_pieces(self) -> set[str]:
        return {
            BANK_PIECE,
            DEFERRED_PIECE,
            *self._sources,
            *(FEATURE_PIECE + name for name in self._signals.quality),
            *(SIGNAL_PIECE + name for name in self._monitors),
        }

    def _piece(self, name: str) -> Any:
        if name == BANK_PIECE:
            return {
                "model_version": self.model_version,
                "predictions": self.predictions,
                "outcomes": self.outcomes,
                "event_time": None if self._event_time is None else self._event_time.isoformat(),
                "policy": self._policy.state(),
                "signals": self._signals.state(),
                "sources": list(self._sources),
            }
        if name == DEFERRED_PIECE:
            return {
                self._ranks[signal]: monitor.n
                for signal, monitor in self._monitors.items()
                if _deferring(monitor)
            }
        if (source := self._sources.get(name)) is not None:
            return source.state()
        if name.startswith(FEATURE_PIECE):
            return self._signals.feature_state(name[len(FEATURE_PIECE) :])
        monitor = self._monitors[name[len(SIGNAL_PIECE) :]]
        signal = monitor.signal
        definition = (signal.name, signal.kind, signal.binary, signal.categorical)
        return {
            "signal": (*definition, signal.recent_window),
            "rank": self._ranks[signal.name],
            "monitor": monitor.state(),
        }

    # -- helpers -------------------------------------------------------------------------

    def _saw(self, event_time: datetime) -> None:
        if self._event_time is None or event_time > self._event_time:
            self._event_time = event_time

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise ValueError(f"bank of model {self.model_id!r} got an event of {model_id!r}")

    def _saw_signal(self, name: str, *, counted: bool, still: bool) -> None:
        """Mark what a batch of a signal changed: the count of the signals that defer (it
        ``counted`` as one before, or ``still`` is), and the signal's own piece (new, or its
        first 1)."""
        if counted or still:
            self._changed.add(DEFERRED_PIECE)
        if not (counted and still):
            self._changed_signals.add(name)

    def _monitor(self, signal: Signal) -> Monitor:
        monitor = self._monitors.get(signal.name)
        if monitor is None:
            self._ranks[signal.name] = len(self._monitors)
            monitor = self._monitors[signal.name] = monitor_for(
                signal,
                self.config.detectors_for(signal),
                signal.recent_window or self.config.recent_window,
            )
        return monitor

    def _estimate(self, signal: Signal) -> float | None:
        monitor = self._monitors.get(signal.name)
        return None if monitor is None else monitor.estimate

    def _signal_summary(self, monitor: Monitor) -> SignalSummary:
        detectors: dict[str, Status] = {}
        for name in monitor.detectors:
            if self._policy.in_drift(monitor.signal.name, name):
                detectors[name] = "drift"
            elif monitor.in_warning(name):
                detectors[name] = "warning"
            else:
                detectors[name] = "ok"
        if monitor.signal.name == VOLUME.name and self._watch is not None:
            detectors[SILENCE_DETECTOR] = "drift" if self._watch.silent else "ok"
        statuses = set(detectors.values())
        return SignalSummary(
            signal=monitor.signal.name,
            kind=monitor.signal.kind,
            estimate=monitor.estimate,
            n=monitor.n,
            status="drift" if "drift" in statuses else "warning" if "warning" in statuses else "ok",
            detectors=detectors,
        )


class _PredictionColumns(NamedTuple):
    """A batch of predictions and outcomes: its first ``columns`` columns are the predictions',
    with ``at`` an index among them; ``positions[at]`` is the index in the batch."""

    columns: int
    positions: list[int]


class _Among(Sequence[int]):
    """Indices into ``among``'s positions: ``self[i] == among[inner[i]]`` (mapped when read)."""

    def __init__(self, among: Sequence[int], inner: Sequence[int]) -> None:
        self.among, self.inner = among, inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> int:  # type: ignore[override]
        return self.among[self.inner[index]]


def _silence_firing(silence: Silence) -> Firing:
    """A silence as a firing of ``volume``'s ``silence`` detector: from the learned rate (per
    second, over the intervals it was learned from) to nothing."""
    return Firing(
        signal=VOLUME,
        detector=SILENCE_DETECTOR,
        severity="critical",
        before=WindowStats(mean=silence.rate, n=silence.intervals),
        after=WindowStats(mean=0.0, n=0),
        events_since_drift_start=0,
        observed=silence.intervals,
    )


SILENCE_DETECTOR = "silence"
"""The detector name of a silence alert (on ``volume``): the model stopped sending while event
time went on (:class:`~detectors.volume.Silence`)."""

_OUTCOME_SIGNALS = (ERROR_RATE, ABS_ERROR)
"""The concept signals of outcomes; their columns come after the signal sources'."""

BANK_PIECE = "bank"
"""The piece with the bank's counters, alert history and the names of its signals and sources."""
FEATURE_PIECE = "feature/"
"""The prefix of a tracked feature's piece (its reference and quality counts)."""
SIGNAL_PIECE = "signal/"
"""The prefix of a signal's piece (its monitor: detectors, window, counters)."""
DEFERRED_PIECE = "deferred"
"""The piece of the zeros counted by the binary signals that have seen nothing else (signal
rank -> count): such a signal's own piece is written when it starts and when it sees its
first 1, not for every zero (most ``missing:*`` and ``invalid:*`` signals never see a 1)."""
PIECE_FORMAT = 9
"""The format of the pieces written; one of another format than :data:`READ_FORMATS` is
refused (:class:`SnapshotFormatError`)."""
READ_FORMATS = (7, 8, PIECE_FORMAT)
"""Format 8: a feature's piece written at each value while its reference fills (its ``seen``
is exact; from 9 on, the value signal's count is). Format 7: the same without ``deferred``
(its counts are in the signal pieces)."""


class _PlainUnpickler(pickle.Unpickler):
    """Reads plain values only (numbers, strings, bytes, lists, tuples, dicts): a piece holds
    no object of any class; river's detectors are in it as bytes of their own pickles."""

    def find_class(self, module: str, name: str) -> Any:
        raise SnapshotFormatError(f"a state piece may not hold {module}.{name}")


def encode_piece(name: str, value: Any) -> bytes:
    """One piece of a bank's state as bytes: its format version, its name and its value."""
    return pickle.dumps((PIECE_FORMAT, name, value), protocol=pickle.HIGHEST_PROTOCOL)


def decode_piece(name: str, data: bytes) -> Any:
    """The value of piece ``name`` (:class:`SnapshotFormatError` if it is another format)."""
    try:
        piece_format, piece_name, value = _PlainUnpickler(io.BytesIO(data)).load()
    except SnapshotFormatError:
        raise
    except Exception as exc:
        raise SnapshotFormatError(f"unreadable state piece {name!r}: {exc!r}") from exc
    if piece_format not in READ_FORMATS or piece_name != name:
        formats = " and ".join(map(str, READ_FORMATS))
        raise SnapshotFormatError(
            f"state piece {name!r} of format {piece_format!r}; this build reads {formats}"
        )
    return value


def _deferring(monitor: Monitor) -> TypeGuard[SignalMonitor]:
    """Whether ``monitor`` is a binary signal's that has seen zeros only."""
    return isinstance(monitor, SignalMonitor) and monitor.deferring
