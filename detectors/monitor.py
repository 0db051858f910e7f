"""Run the configured detectors on one signal and report when they fire.

A :class:`SignalMonitor` owns the detectors of one numeric or binary signal of one model. It
takes the signal's values a batch at a time (:meth:`SignalMonitor.update_many`): each detector
runs over the batch in one tight loop, and when one detects a drift the monitor reports a
:class:`Firing` with the signal's mean before and after the change, then replaces the detector
with a fresh one so it learns the new regime. A :class:`CategoryMonitor` does the same for a
categorical signal, and its firings name the values whose share moved. Whether a firing becomes
an alert is the alert policy's decision. A batch gives the same firings, at the same values, as
the same values fed one at a time.

Each monitor's state is a plain value (:meth:`SignalMonitor.state`, built again by
:func:`monitor_from_state`): its counters, its recent window and its river detectors (pickled
by river's own means), so a runtime can save the signals that changed one by one.

>>> from detectors.registry import DetectorSpec
>>> from detectors.signals import ERROR_RATE
>>> monitor = SignalMonitor(ERROR_RATE, [DetectorSpec(name="adwin")], recent_window=500)
>>> stream = [1.0 if i % 10 == 0 else 0.0 for i in range(3000)] + [1.0, 0.0] * 500
>>> (i, firing), = monitor.update_many(stream)
>>> i, firing.detector, firing.severity, firing.before, firing.after
(3039, 'adwin', 'critical', WindowStats(mean=0.1, n=3000), WindowStats(mean=0.5, n=40))
"""

from __future__ import annotations

import functools
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import reduce
from operator import add
from typing import Any, Literal

import numpy as np

from detectors.category import CategoryShift
from detectors.registry import REGISTRY, DetectorSpec, build_detector
from detectors.signals import Signal
from detectors.window import RecentWindow, change_point
from schemas.events import MAX_MOVED_VALUES, ValueShare, WindowStats

Severity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class Firing:
    """A detector fired on a signal: drift (``"critical"``) or its warning zone opened.

    The change point is estimated, whatever the detector, as the least-squares split of the
    latest ``recent_window`` values the detector saw (:func:`detectors.window.change_point`):
    ``after`` and ``events_since_drift_start`` cover the values since it, ``before`` all the
    detector saw before it. A change older than ``recent_window`` values is placed inside it.
    ``observed`` is the signal's count of values when it fired (the alert policy's clock).
    """

    signal: Signal
    detector: str
    severity: Severity
    before: WindowStats
    after: WindowStats
    events_since_drift_start: int | None
    moved: tuple[ValueShare, ...] | None = None
    observed: int = 0


Fired = tuple[int, Firing]
"""A firing and the index, in the batch given, of the value it fired at."""

MAX_DEFERRED_ZEROS = 100_000
"""The most leading zeros of a binary signal replayed into its detectors (see
:class:`SignalMonitor`)."""


@dataclass(slots=True)
class _Run:
    """One detector and what it has seen since it was (re)built."""

    spec: DetectorSpec
    detector: Any
    binary_only: bool
    has_warning: bool
    total: float = 0.0
    n: int = 0
    warning: bool = False

    @classmethod
    def fresh(cls, spec: DetectorSpec) -> _Run:
        return cls.of(spec, build_detector(spec))

    @classmethod
    def of(cls, spec: DetectorSpec, detector: Any) -> _Run:
        """``detector``, built from ``spec``, with nothing seen since."""
        binary_only = REGISTRY[spec.name].binary_only
        return cls(spec, detector, binary_only, hasattr(detector, "warning_detected"))

    def state(self) -> tuple[dict[str, Any], bytes, float, int, bool]:
        detector = pickle.dumps(self.detector, protocol=pickle.HIGHEST_PROTOCOL)
        return self.spec.model_dump(), detector, self.total, self.n, self.warning

    @classmethod
    def from_state(cls, state: Sequence[Any]) -> _Run:
        spec, detector, total, n, warning = state
        run = cls.of(_restored_spec(spec), pickle.loads(detector))
        run.total, run.n, run.warning = total, n, warning
        return run


def _restored_spec(state: dict[str, Any]) -> DetectorSpec:
    """The spec a saved state names, one object for equal ones: a restored model's signals
    share their specs as fresh ones share the configuration's (a spec is about 100 bytes a
    signal otherwise)."""
    return _spec_of(json.dumps(state, sort_keys=True))


@functools.cache
def _spec_of(text: str) -> DetectorSpec:
    return DetectorSpec.model_validate_json(text)


def _fresh_run_state(spec: DetectorSpec) -> tuple[dict[str, Any], bytes, float, int, bool]:
    """The state of a detector that saw nothing (what a deferring monitor saves)."""
    return _fresh_run_state_of(spec.model_dump_json())


@functools.cache
def _fresh_run_state_of(spec: str) -> tuple[dict[str, Any], bytes, float, int, bool]:
    return _Run.fresh(DetectorSpec.model_validate_json(spec)).state()


def _until_drift(detector: Any, values: Sequence[Any], start: int) -> int:
    """Feed ``values[start:]`` to ``detector`` until it detects a drift: that index, or -1."""
    update = detector.update
    for index in range(start, len(values)):
        update(values[index])
        if detector.drift_detected:
            return index
    return -1


class SignalMonitor:
    """The detectors of one signal, with the signal's recent values.

    Parameters
    ----------
    signal
        The signal watched; binary-only detectors receive ``bool`` values.
    specs
        The detectors to run, with distinct names (a detector's name identifies it).
    recent_window
        How many latest values are kept for the live estimate and the ``after`` statistics.

    A binary signal's leading zeros are counted, not fed: many indicators (``missing:<f>`` of
    a feature that is never missing) stay 0 for ever, and a detector cannot fire on a constant.
    The first 1 builds the detectors and replays the last ``MAX_DEFERRED_ZEROS`` of them into
    the detectors and the window before it, so the detectors see what they would have seen, up
    to that cap. Until then the monitor holds no detector (its state holds fresh ones).
    """

    __slots__ = ("_deferred_zeros", "_deferring", "_runs", "_specs", "n", "signal", "window")

    def __init__(self, signal: Signal, specs: Sequence[DetectorSpec], recent_window: int) -> None:
        _check_distinct(specs)
        self.signal = signal
        self.n = 0
        self.window = RecentWindow(recent_window, binary=signal.binary)
        self._specs = tuple(specs)
        self._deferring = signal.binary
        self._runs = [] if self._deferring else [_Run.fresh(spec) for spec in specs]
        self._deferred_zeros = 0

    @property
    def detectors(self) -> list[str]:
        """The names of the detectors, in the configured order."""
        return [spec.name for spec in self._specs]

    @property
    def estimate(self) -> float:
        """The signal's mean over the recent window."""
        return self.window.mean

    @property
    def deferring(self) -> bool:
        """Whether it has seen zeros only (a binary signal): its state is then its count."""
        return self._deferring

    def resume_deferring(self, zeros: int) -> None:
        """Continue a monitor that has seen ``zeros`` zeros and nothing else (its count saved
        apart from its piece, which is not rewritten for every zero)."""
        if not self._deferring:
            raise ValueError(f"{self.signal.name} has seen more than zeros")
        self.n = self._deferred_zeros = zeros

    def in_warning(self, detector: str) -> bool:
        """Whether ``detector`` is in its warning zone (never, if it has none)."""
        return any(run.warning for run in self._runs if run.spec.name == detector)

    def update(self, value: float) -> list[Firing]:
        """Feed one value to every detector; the firings, in the configured order."""
        return [firing for _, firing in self.update_many((value,))]

    def defer(self, values: Sequence[float]) -> bool:
        """Count ``values`` if they are zeros that this monitor defers (it has seen zeros
        only); whether it did (else they are for :meth:`update_many`)."""
        if not self._deferring or any(values):
            return False
        self.n += len(values)
        self._deferred_zeros += len(values)
        return True

    def update_many(self, values: Sequence[float]) -> list[Fired]:
        """Feed ``values`` in order to every detector; the firings with the index of the value
        each fired at, in the order one value at a time would give."""
        count = len(values)
        if count == 0 or self.defer(values):
            return []
        n_before = self.n
        self.n += count
        replayed = 0
        if self._deferring:
            first = next(i for i, value in enumerate(values) if value != 0.0)
            self._deferring = False
            self._runs = [_Run.fresh(spec) for spec in self._specs]
            replayed = min(self._deferred_zeros + first, MAX_DEFERRED_ZEROS)
            values = [0.0] * replayed + list(values[first:])
        elif isinstance(values[0], str):
            raise TypeError(f"{self.signal.name} takes numbers, not {values[0]!r}")
        fired: list[tuple[int, int, Firing]] = []
        for order in range(len(self._runs)):
            for at, firing in self._run_over(order, values):
                fired.append((at, order, firing))
        self.window.extend(values)
        if not fired:
            return []
        fired.sort(key=lambda item: (item[0], item[1]))
        first = count - len(values) + replayed  # the index given of the value fed first
        given = [(first + max(0, at - replayed), firing) for at, _, firing in fired]
        return [(at, replace(firing, observed=n_before + at + 1)) for at, firing in given]

    def _run_over(self, order: int, values: Sequence[float]) -> list[tuple[int, Firing]]:
        """Run one detector over ``values`` (replacing it at each drift); its firings with the
        index of their value."""
        run = self._runs[order]
        fed: Sequence[Any] = [v == 1.0 for v in values] if run.binary_only else values
        firings: list[tuple[int, Firing]] = []
        start = 0
        while start < len(values):
            if run.has_warning:
                at, severity = self._until_signal(run, fed, start)
            else:
                at, severity = _until_drift(run.detector, fed, start), "critical"
            end = len(values) if at < 0 else at + 1
            fed_now = values if start == 0 and at < 0 else values[start:end]
            run.total = reduce(add, fed_now, run.total)  # in order: batch-independent
            run.n += end - start
            if at < 0:
                break
            firings.append((at, self._firing(run, severity, values[: at + 1])))
            if severity == "critical":
                self._runs[order] = run = _Run.fresh(run.spec)
            start = at + 1
        return firings

    @staticmethod
    def _until_signal(run: _Run, fed: Sequence[Any], start: int) -> tuple[int, Severity]:
        """Feed a detector with a warning zone until it drifts or newly warns."""
        detector = run.detector
        for index in range(start, len(fed)):
            detector.update(fed[index])
            if detector.drift_detected:
                return index, "critical"
            warning = bool(detector.warning_detected)
            opened = warning and not run.warning and run.spec.warnings
            run.warning = warning
            if opened:
                return index, "warning"
        return -1, "critical"

    def _firing(self, run: _Run, severity: Severity, fed: Sequence[float]) -> Firing:
        """The firing of ``run`` after the values ``fed`` of this batch (the window holds the
        values before it)."""
        latest = np.asarray(fed[-self.window.size :], dtype=float)
        recent = np.concatenate((self.window.values(), latest))
        recent = recent[-self.window.size :]
        seen = min(len(recent), run.n)
        after_n = change_point(recent[-seen:]) if seen >= 2 else seen
        after_total = float(recent[len(recent) - after_n :].sum()) if after_n else 0.0
        before_n = run.n - after_n
        return Firing(
            signal=self.signal,
            detector=run.spec.name,
            severity=severity,
            before=WindowStats(
                mean=(run.total - after_total) / before_n if before_n else 0.0, n=before_n
            ),
            after=WindowStats(mean=after_total / after_n, n=after_n),
            events_since_drift_start=after_n,
        )

    def state(self) -> dict[str, Any]:
        """The monitor as plain values: counters, window, detectors (pickled by river)."""
        return {
            "n": self.n,
            "deferring": self._deferring,
            "deferred_zeros": self._deferred_zeros,
            "window": self.window.state(),
            "runs": [run.state() for run in self._runs]
            if not self._deferring
            else [_fresh_run_state(spec) for spec in self._specs],
        }

    @classmethod
    def from_state(cls, signal: Signal, state: dict[str, Any]) -> SignalMonitor:
        monitor = cls.__new__(cls)
        monitor.signal = signal
        monitor.n = state["n"]
        monitor.window = RecentWindow.from_state(state["window"])
        monitor._deferring = state["deferring"]
        monitor._specs = tuple(_restored_spec(run[0]) for run in state["runs"])
        monitor._runs = [] if monitor._deferring else [_Run.from_state(r) for r in state["runs"]]
        monitor._deferred_zeros = state["deferred_zeros"]
        return monitor


class CategoryMonitor:
    """The categorical detectors (:class:`~detectors.category.CategoryShift`) of one signal.

    A firing's ``moved`` lists the values whose share moved (at most ``MAX_MOVED_VALUES``),
    and ``before``/``after`` give the share of the most moved one in the detector's reference
    and in its recent window, with their sizes.

    Parameters
    ----------
    signal
        The categorical signal watched.
    specs
        Its detectors (categorical ones), with distinct names.
    """

    __slots__ = ("_detectors", "_specs", "n", "signal")

    def __init__(self, signal: Signal, specs: Sequence[DetectorSpec]) -> None:
        _check_distinct(specs)
        self.signal = signal
        self.n = 0
        self._specs = tuple(specs)
        self._detectors: list[CategoryShift] = [build_detector(spec) for spec in specs]

    @property
    def detectors(self) -> list[str]:
        """The names of the detectors, in the configured order."""
        return [spec.name for spec in self._specs]

    @property
    def estimate(self) -> float:
        """How far the recent shares are from the reference: the first detector's total
        variation distance, 0 (same shares) to 1 (0.0 without detectors)."""
        return float(self._detectors[0].distance()) if self._detectors else 0.0

    def in_warning(self, detector: str) -> bool:
        """Categorical detectors have no warning zone."""
        return False

    def update(self, value: str) -> list[Firing]:
        """Feed one value to every detector; the firings, in the configured order."""
        return [firing for _, firing in self.update_many((value,))]

    def update_many(self, values: Sequence[str]) -> list[Fired]:
        """Feed ``values`` to every detector; the firings with the index of their value."""
        if values and not isinstance(values[0], str):
            raise TypeError(f"{self.signal.name} takes strings, not {values[0]!r}")
        n_before = self.n
        self.n += len(values)
        fired: list[tuple[int, int, Firing]] = []
        for index, spec in enumerate(self._specs):
            start = 0
            while (at := self._detectors[index].update_many(values, start)) >= 0:
                fired.append((at, index, self._firing(spec, index, n_before + at + 1)))
                self._detectors[index] = build_detector(spec)
                start = at + 1
        fired.sort(key=lambda item: (item[0], item[1]))
        return [(at, firing) for at, _, firing in fired]

    def _firing(self, spec: DetectorSpec, index: int, observed: int) -> Firing:
        detector = self._detectors[index]
        moved = tuple(detector.moved()[:MAX_MOVED_VALUES])
        return Firing(
            signal=self.signal,
            detector=spec.name,
            severity="critical",
            before=WindowStats(mean=moved[0].before, n=detector.reference),
            after=WindowStats(mean=moved[0].after, n=detector.window),
            events_since_drift_start=None,
            moved=moved,
            observed=observed,
        )

    def state(self) -> dict[str, Any]:
        """The monitor as plain values: its count and each detector's state."""
        return {
            "n": self.n,
            "specs": [spec.model_dump() for spec in self._specs],
            "detectors": [detector.state() for detector in self._detectors],
        }

    @classmethod
    def from_state(cls, signal: Signal, state: dict[str, Any]) -> CategoryMonitor:
        monitor = cls.__new__(cls)
        monitor.signal = signal
        monitor.n = state["n"]
        monitor._specs = tuple(_restored_spec(spec) for spec in state["specs"])
        monitor._detectors = [CategoryShift.from_state(d) for d in state["detectors"]]
        return monitor


Monitor = SignalMonitor | CategoryMonitor


def monitor_for(signal: Signal, specs: Sequence[DetectorSpec], recent_window: int) -> Monitor:
    """The monitor that suits ``signal``: categorical or numeric."""
    if signal.categorical:
        return CategoryMonitor(signal, specs)
    return SignalMonitor(signal, specs, recent_window)


def monitor_from_state(signal: Signal, state: dict[str, Any]) -> Monitor:
    """The monitor :meth:`SignalMonitor.state` (or the categorical one's) describes."""
    if signal.categorical:
        return CategoryMonitor.from_state(signal, state)
    return SignalMonitor.from_state(signal, state)


def _check_distinct(specs: Sequence[DetectorSpec]) -> None:
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"detector names must be distinct on a signal, got {names}")
