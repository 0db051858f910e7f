"""Run the configured detectors on one signal and report when they fire.

A :class:`SignalMonitor` owns the detectors of one numeric or binary signal of one model. On
every value it updates each detector; when one detects a drift it reports a :class:`Firing`
with the signal's mean before and after the change, then replaces the detector with a fresh
one so it learns the new regime. A :class:`CategoryMonitor` does the same for a categorical
signal, and its firings name the values whose share moved. Whether a firing becomes an alert
is the alert policy's decision.

>>> from detectors.registry import DetectorSpec
>>> from detectors.signals import ERROR_RATE
>>> monitor = SignalMonitor(ERROR_RATE, [DetectorSpec(name="adwin")], recent_window=500)
>>> stream = [1.0 if i % 10 == 0 else 0.0 for i in range(3000)] + [1.0, 0.0] * 500
>>> firings = [(i, f) for i, v in enumerate(stream) for f in monitor.update(v)]
>>> i, firing = firings[0]
>>> i, firing.detector, firing.severity, firing.before, firing.after
(3039, 'adwin', 'critical', WindowStats(mean=0.1, n=3000), WindowStats(mean=0.5, n=40))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from detectors.registry import REGISTRY, DetectorSpec, build_detector
from detectors.signals import Signal, SignalValue
from detectors.window import RecentWindow
from schemas.events import MAX_MOVED_VALUES, ValueShare, WindowStats

Severity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class Firing:
    """A detector fired on a signal: drift (``"critical"``) or its warning zone opened.

    The change point is estimated, whatever the detector, as the least-squares split of the
    latest ``recent_window`` values the detector saw (:meth:`RecentWindow.change_point`):
    ``after`` and ``events_since_drift_start`` cover the values since it, ``before`` all the
    detector saw before it. A change older than ``recent_window`` values is placed inside it.
    """

    signal: Signal
    detector: str
    severity: Severity
    before: WindowStats
    after: WindowStats
    events_since_drift_start: int | None
    moved: tuple[ValueShare, ...] | None = None


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
        detector = build_detector(spec)
        binary_only = REGISTRY[spec.name].binary_only
        return cls(spec, detector, binary_only, hasattr(detector, "warning_detected"))


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
    The first 1 replays the last ``MAX_DEFERRED_ZEROS`` of them into the detectors and the
    window before it, so the detectors see what they would have seen, up to that cap.
    """

    def __init__(self, signal: Signal, specs: Sequence[DetectorSpec], recent_window: int) -> None:
        _check_distinct(specs)
        self.signal = signal
        self.n = 0
        self.window = RecentWindow(recent_window)
        self._runs = [_Run.fresh(spec) for spec in specs]
        self._deferred_zeros = 0
        self._deferring = signal.binary

    @property
    def detectors(self) -> list[str]:
        """The names of the detectors, in the configured order."""
        return [run.spec.name for run in self._runs]

    @property
    def estimate(self) -> float:
        """The signal's mean over the recent window."""
        return self.window.mean

    def in_warning(self, detector: str) -> bool:
        """Whether ``detector`` is in its warning zone (never, if it has none)."""
        return any(run.warning for run in self._runs if run.spec.name == detector)

    def update(self, value: SignalValue) -> list[Firing]:
        """Feed one value to every detector; the firings, in the configured order."""
        self.n += 1
        if self._deferring and value == 0.0:
            self._deferred_zeros += 1
            return []
        if isinstance(value, str):
            raise TypeError(f"{self.signal.name} takes numbers, not {value!r}")
        if self._deferring:
            self._deferring = False
            replayed = min(self._deferred_zeros, MAX_DEFERRED_ZEROS)
            firings = [firing for _ in range(replayed) for firing in self._feed(0.0)]
            return firings + self._feed(value)
        return self._feed(value)

    def _feed(self, value: float) -> list[Firing]:
        self.window.push(value)
        firings: list[Firing] = []
        for index, run in enumerate(self._runs):
            run.detector.update(value == 1.0 if run.binary_only else value)
            run.total += value
            run.n += 1
            if run.detector.drift_detected:
                firings.append(self._firing(run, "critical"))
                self._runs[index] = _Run.fresh(run.spec)
                continue
            if run.has_warning:
                warning = bool(run.detector.warning_detected)
                if warning and not run.warning and run.spec.warnings:
                    firings.append(self._firing(run, "warning"))
                run.warning = warning
        return firings

    def _firing(self, run: _Run, severity: Severity) -> Firing:
        seen = min(len(self.window), run.n)
        after_n = self.window.change_point(seen) if seen >= 2 else seen
        after_total = self.window.tail_sum(after_n)
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

    def __init__(self, signal: Signal, specs: Sequence[DetectorSpec]) -> None:
        _check_distinct(specs)
        self.signal = signal
        self.n = 0
        self._specs = list(specs)
        self._detectors = [build_detector(spec) for spec in specs]

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

    def update(self, value: SignalValue) -> list[Firing]:
        """Feed one value to every detector; the firings, in the configured order."""
        if not isinstance(value, str):
            raise TypeError(f"{self.signal.name} takes strings, not {value!r}")
        self.n += 1
        firings: list[Firing] = []
        for index, (spec, detector) in enumerate(zip(self._specs, self._detectors, strict=True)):
            detector.update(value)
            if detector.drift_detected:
                moved = tuple(detector.moved()[:MAX_MOVED_VALUES])
                firings.append(
                    Firing(
                        signal=self.signal,
                        detector=spec.name,
                        severity="critical",
                        before=WindowStats(mean=moved[0].before, n=detector.reference),
                        after=WindowStats(mean=moved[0].after, n=detector.window),
                        events_since_drift_start=None,
                        moved=moved,
                    )
                )
                self._detectors[index] = build_detector(spec)
        return firings


Monitor = SignalMonitor | CategoryMonitor


def monitor_for(signal: Signal, specs: Sequence[DetectorSpec], recent_window: int) -> Monitor:
    """The monitor that suits ``signal``: categorical or numeric."""
    if signal.categorical:
        return CategoryMonitor(signal, specs)
    return SignalMonitor(signal, specs, recent_window)


def _check_distinct(specs: Sequence[DetectorSpec]) -> None:
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"detector names must be distinct on a signal, got {names}")
