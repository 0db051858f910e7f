"""Run the configured detectors on one signal and report when they fire.

A :class:`SignalMonitor` owns the detectors of one signal of one model. On every value it
updates each detector; when one detects a drift it reports a :class:`Firing` with the
signal's mean before and after the change, then replaces the detector with a fresh one so it
learns the new regime. Whether a firing becomes an alert is the alert policy's decision.

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
from detectors.signals import Signal
from detectors.window import RecentWindow
from schemas.events import WindowStats

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


@dataclass(slots=True)
class _Run:
    """One detector and what it has seen since it was (re)built."""

    spec: DetectorSpec
    detector: Any
    total: float = 0.0
    n: int = 0
    warning: bool = False


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
    """

    def __init__(self, signal: Signal, specs: Sequence[DetectorSpec], recent_window: int) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be distinct on a signal, got {names}")
        self.signal = signal
        self.n = 0
        self.window = RecentWindow(recent_window)
        self._runs = [_Run(spec, build_detector(spec)) for spec in specs]

    @property
    def detectors(self) -> list[str]:
        """The names of the detectors, in the configured order."""
        return [run.spec.name for run in self._runs]

    def in_warning(self, detector: str) -> bool:
        """Whether ``detector`` is in its warning zone (never, if it has none)."""
        return any(run.warning for run in self._runs if run.spec.name == detector)

    def update(self, value: float) -> list[Firing]:
        """Feed one value to every detector; the firings, in the configured order."""
        self.n += 1
        self.window.push(value)
        firings: list[Firing] = []
        for index, run in enumerate(self._runs):
            run.detector.update(value == 1.0 if REGISTRY[run.spec.name].binary_only else value)
            run.total += value
            run.n += 1
            warning = bool(getattr(run.detector, "warning_detected", False))
            if run.detector.drift_detected:
                firings.append(self._firing(run, "critical"))
                self._runs[index] = _Run(run.spec, build_detector(run.spec))
                continue
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
