"""Signal sources: what must see a model's every event, in order, to give a signal its values.

Most signals are a function of one event (a feature's value, a prediction's score): the bank
takes them from a batch a column at a time (:mod:`detectors.signals`). A **signal source**
keeps state across events: the traffic volume counts predictions per interval, label health
waits for a bucket's labels, the score calibration learns from the first outcomes. The bank
(:class:`~detectors.bank.DetectorBank`) takes a batch one observation at a time through every
source and gathers what they emit into one column per signal.

A source (:class:`SignalSource`) declares

- ``name``: the name of its piece of the bank's state, ``"source/<family>"``;
- ``signals``: the signals it emits, up front (the bank's columns come in this order, sources
  in registry order, so alerts of one observation come in the same order in any batch);
- ``on_prediction`` / ``on_outcome``: its hook for a :class:`~schemas.events.PredictionEvent`
  and for a :class:`~detectors.join_buffer.JoinedOutcome`, or ``None`` for a kind it does not take
  (then it is not called for it, and a batch without the other kind does not save it). A hook
  takes the observation and ``emit``: ``emit(signal, value)`` puts a value of one of its
  signals into the batch's column, at the observation being applied. A hook is called once
  per observation: it must emit while it is called (``emit`` is of that batch only);
- ``figures``: the figures its ``summary()`` gives, by name, each with what it is (the help
  of its gauge ``driftstream_model_<name>``), or ``None`` for one kept in Redis only; the
  bank's :class:`~detectors.bank.BankSummary` carries them in ``figures``, the Redis model
  hash under their names (:data:`FIGURES`: every registered source's);
- ``state()``: its state as plain values (numbers, strings, bytes, lists, tuples, dicts: the
  bank's piece reader refuses any object), and the class method ``from_state(state)``, a
  source that goes on exactly where that one was. The bank saves each source as its own piece,
  after a batch that held an observation of a kind the source takes.

:data:`SOURCES` is the registry: the source classes a bank builds (``for_bank(config,
arrival_order=...)``) in this order. A new signal family is a module with its class and a line
here; ``tests/unit/test_source_conformance.py`` runs every registered source through the
contract (state round trip mid-stream, declared signals only, plain state of bounded size,
batches give the values of one observation at a time).

>>> from datetime import datetime, timedelta, timezone
>>> from schemas.events import PredictionEvent
>>> [source.name for source in SOURCES][3:]
['source/positive_class', 'source/explain', 'source/explain_estimate']
>>> volume = TrafficVolume.for_bank(BankConfig(volume_interval_seconds=10), arrival_order=False)
>>> columns = SourceColumns(volume.signals)
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> for i, seconds in enumerate([1, 12, 13, 31]):
...     columns.at = i
...     event = PredictionEvent(request_id=str(i), model_id="m", model_version="1",
...         timestamp=t0 + timedelta(seconds=seconds), features={}, prediction=1)
...     volume.on_prediction(event, columns.emit)
>>> [(c.signal.name, c.values, list(c.at)) for c in columns.columns()]
[('volume', [0.2], [3])]
>>> TrafficVolume.from_state(volume.state()).summary() == volume.summary() == {
...     "late_for_volume": 0}
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from detectors.calibration import PerformanceEstimate
from detectors.config import BankConfig
from detectors.explain import EstimateExplainer, SliceExplainer
from detectors.join_buffer import JoinedOutcome
from detectors.label_health import LabelHealth
from detectors.monitor import Firing
from detectors.positive_class import PositiveClassRates
from detectors.signals import Column, Signal, SignalValue
from detectors.volume import Silence, TrafficVolume
from schemas.events import DriftAlert, PredictionEvent

Emit = Callable[[Signal, SignalValue], None]
"""``emit(signal, value)``: a value of one of the source's signals, at the observation applied."""
PredictionHook = Callable[[PredictionEvent, Emit], None]
OutcomeHook = Callable[[JoinedOutcome, Emit], None]
Figure = float | int | None
"""A summary figure: a count, a rate, or None while undefined."""

SOURCE_PIECE = "source/"
"""The prefix of a source's piece name."""


class SignalSource(Protocol):
    """Per-event state that emits values of its own signals (see the module's docs)."""

    @property
    def name(self) -> str:
        """Its piece's name: ``"source/<family>"``."""
        ...

    @property
    def signals(self) -> tuple[Signal, ...]:
        """The signals it emits, in the order of their columns."""
        ...

    @property
    def on_prediction(self) -> PredictionHook | None:
        """Take a prediction (emitting values), or None if it takes none."""
        ...

    @property
    def on_outcome(self) -> OutcomeHook | None:
        """Take a joined outcome (emitting values), or None if it takes none."""
        ...

    figures: ClassVar[Mapping[str, str | None]]
    """The figures of its :meth:`summary`: name -> what it is (its gauge's help), or None for a
    figure kept in Redis only."""

    def summary(self) -> dict[str, Figure]:
        """Its figures by name, as :attr:`figures` declares them."""
        ...

    def state(self) -> dict[str, Any]:
        """Its state as plain values, for :meth:`from_state`."""
        ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """A source that goes on exactly where the one whose :meth:`state` this is was."""
        ...

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> Self:
        """A new source with the settings of a bank's ``config`` (``arrival_order``: the bank's
        predictions come in arrival order, not event-time order)."""
        ...


@runtime_checkable
class AlertAnnotator(Protocol):
    """A source that adds to the alerts the bank raises (:mod:`detectors.explain`: why a
    concept alert fired). The bank shows it every alert, in order, with its firing, and ends
    each batch with :meth:`settle`."""

    def annotate(self, firing: Firing, alert: DriftAlert) -> DriftAlert:
        """``alert``, raised for ``firing``, with what the source adds."""
        ...

    def settle(self) -> None:
        """The batch's alerts are all annotated."""
        ...

    def bind(self, sources: Mapping[str, SignalSource]) -> None:
        """The bank's sources, by name, once they are made or restored (an annotator may read
        another source's figures, as the explainer reads the estimate's)."""
        ...


@runtime_checkable
class SilenceWatch(Protocol):
    """A source that sees its model go silent (:class:`~detectors.volume.TrafficVolume`): the
    silence is decided from the model's own state, its latest prediction and the gap its rate
    allows, so it is the same whether the model's next prediction reveals it (the source puts
    it in :attr:`found` while that prediction is applied; the bank takes it from there) or an
    event-time clock across models does (:meth:`silence_at`, through the bank's
    ``advance``)."""

    found: list[Silence]
    """Silences revealed by the predictions being applied (the bank empties it)."""

    @property
    def silent(self) -> bool:
        """Whether the model is in a silence found already (none came since)."""
        ...

    def silence_deadline(self) -> float | None:
        """When the model is silent if nothing comes (epoch seconds); None: not armed."""
        ...

    def silence_at(self, clock: float) -> Silence | None:
        """The silence a clock (epoch seconds) past the deadline reveals, once per gap."""
        ...


def implements(source: SignalSource, protocol: type) -> bool:
    """Whether ``source`` is also an :class:`AlertAnnotator` or a :class:`SilenceWatch`,
    decided once per class: ``isinstance`` on a runtime protocol inspects its members each
    time, and did so for six sources and two protocols in every bank made or restored (93% of
    the 200 µs a new bank took)."""
    key = (type(source), protocol)
    known = _IMPLEMENTED.get(key)
    if known is None:
        known = _IMPLEMENTED[key] = isinstance(source, protocol)
    return known


_IMPLEMENTED: dict[tuple[type, type], bool] = {}
"""(source class, protocol) -> whether its instances implement it (a class's instances all
have the members its ``__init__`` sets)."""


SOURCES: tuple[type[SignalSource], ...] = (
    PerformanceEstimate,
    TrafficVolume,
    LabelHealth,
    PositiveClassRates,
    SliceExplainer,
    EstimateExplainer,
)
"""The registered sources, in the order of their signals' columns (one line per family)."""

FIGURES: dict[str, str | None] = {
    name: help_text for source in SOURCES for name, help_text in source.figures.items()
}
"""Every registered source's summary figures: name -> its gauge's help (None: Redis only)."""


class SourceColumns:
    """Where a batch's sources emit: one column per signal, in the order the signals are given;
    ``at`` is the index, in the batch, of the observation being applied (the caller sets it)."""

    __slots__ = ("_columns", "at")

    def __init__(self, signals: Iterable[Signal]) -> None:
        self.at = 0
        self._columns: dict[str, tuple[Signal, list[SignalValue], list[int]]] = {
            signal.name: (signal, [], []) for signal in signals
        }

    def emit(self, signal: Signal, value: SignalValue) -> None:
        """Add ``value`` to ``signal``'s column at ``at`` (KeyError for a signal not given)."""
        _, values, at = self._columns[signal.name]
        values.append(value)
        at.append(self.at)

    def columns(self) -> list[Column]:
        """Every signal's column, empty ones included."""
        return [Column(signal, values, at) for signal, values, at in self._columns.values()]
