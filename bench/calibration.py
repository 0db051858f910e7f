"""Detectors set for a false-alarm budget (``driftstream calibrate``, :mod:`detectors.budget`):
the false alarms they raise on fresh streams, against the budget, and what they cost in delay.

All at the default settings (no ``DRIFTSTREAM_*`` variable), in four parts:

1. **The command.** ``driftstream simulate -m fraud=stable --events 20000 --seed 1 --to-file
   reference.jsonl`` (``--reference`` predictions), then ``driftstream calibrate reference.jsonl
   --out FILE --false-alarms-per-million B`` for each budget B of ``BUDGETS`` (1 and 10), as
   whole processes, the budgets side by side (its wall time is reported). Each detector file
   says per signal its detectors, the false alarms per million values expected of them and
   the median delay (values of the signal) to detect a shift of 0.5 standard deviations. The
   default detectors' delay is measured the same way here (``budget.detection_delays`` on the
   reference's values from the calibrate command's ``signal_values``, ``DELAY_RUNS`` runs).
2. **Fresh stable streams** of the same model id, seeds ``FRESH_SEEDS`` (11-15),
   ``--fresh`` predictions each: their signal values (``signal_values``, as the command gets
   the reference's), and on them each signal's detectors of each detector file and the
   defaults, each rebuilt after its alarm as the bank does; every alarm is false. The expected
   count is the file's rate times the values. The same streams also go through the replay
   core with each detector file (``replay_of``, ``process_many`` in the replay's batches): the
   alerts a user would see (one per detector and episode, after the cooldown).
3. **Synthetic references** of ``SYNTHETIC_REFERENCE`` (20,000) values, N(0, 1) and
   Bernoulli(0.1): each detector with a knob calibrated (``budget.calibrate_detector``, as the
   command does) at budgets ``SYNTHETIC_BUDGETS`` (1, 10 and 100 per million), then run on a
   fresh stream of the same process (``--synthetic-values`` values, not resampled).
4. **The simulator's drifts**, seeds 2-4, ``--drifting`` predictions: ``abrupt`` (the concept
   changes at the middle, watched by ``error_rate``) and ``data-drift`` (the salaries shift at
   the middle, ``feature:salary``) through the replay core with each detector file and the
   defaults: the predictions served from the drift start until the first alert of the watched
   signal was detected, and the alerts detected before the drift start (false).

The work runs in ``--jobs`` processes. Results go to the "## Detectors for a false-alarm
budget" section of ``docs/benchmarks.md`` (``--quick``: small sizes, to ``bench-quick.md``)::

    .venv/bin/python -m bench.calibration [--reference 20000] [--fresh 100000]
        [--synthetic-values 5000000] [--drifting 20000] [--jobs 2] [--quick] [--output FILE]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.results import load_average, machine, parser, progress, publish, table, written
from detectors import budget
from detectors.config import DetectorConfig, DetectorFile, read_detector_file
from detectors.registry import REGISTRY, DetectorSpec, build_detector
from pipeline.backtest import Backtest
from producers.event_file import scan_event_lines
from producers.scenarios import Scenario
from producers.simulator import ModelTraffic, simulate
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.cli.calibrate import DELAY_RUNS, signal_values
from stream_app.cli.replay import BATCH_EVENTS
from stream_app.processors import detector_config, replay_of
from stream_app.settings import Settings

SECTION = "## Detectors for a false-alarm budget"
COMMAND = ".venv/bin/python -m bench.calibration"
LIBRARIES = ("numpy", "river", "pydantic")
MODEL = "fraud"
REFERENCE_SEED = 1
BUDGETS = (1.0, 10.0)
"""False alarms per million values of a signal, for the simulator's signals."""
DEFAULTS = "defaults"
"""The name of the default detectors among the configurations."""
SHIFT_SD = 0.5
FRESH_SEEDS = (11, 12, 13, 14, 15)
DRIFT_SEEDS = (2, 3, 4)
DRIFTS = (Scenario.ABRUPT, Scenario.DATA_DRIFT)
SYNTHETIC_BUDGETS = (1.0, 10.0, 100.0)
SYNTHETIC_REFERENCE = 20_000
SYNTHETIC = {
    "N(0, 1)": ("adwin", "page_hinkley"),
    "Bernoulli(0.1)": ("adwin", "page_hinkley", "hddm_a", "hddm_w", "ddm"),
}
"""The synthetic references and the detectors with a knob calibrated on each (binary-only
detectors on the Bernoulli one only)."""
CHUNK = 65_536
MAX_VALUES = 1_000_000
"""Resampled values per setting tried, at most (the calibrate command's ``--max-values``)."""


def configuration(name: str) -> str:
    """``1/M``, ``10/M`` or ``defaults``: a configuration's name in the tables.

    >>> configuration("1"), configuration("10"), configuration(DEFAULTS)
    ('1/M', '10/M', 'defaults')
    """
    return name if name == DEFAULTS else f"{name}/M"


def budget_name(value: float) -> str:
    """A budget as the configurations are named: ``1``, ``10``, ``0.5``."""
    return f"{value:g}"


def clean_environment() -> dict[str, str]:
    """This environment without any ``DRIFTSTREAM_*`` setting (the default settings)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DRIFTSTREAM_")}


def count_alarms(spec: DetectorSpec, chunks: Iterable[np.ndarray]) -> int:
    """The alarms of ``spec`` on the values of ``chunks``, in order, rebuilt after each alarm
    as the bank does, fed as the bank feeds it (binary-only detectors take ``value == 1``).

    >>> values = np.concatenate([np.zeros(3000), np.ones(3000)])
    >>> count_alarms(DetectorSpec(name="adwin"), [values[:2000], values[2000:]])
    1
    """
    binary_only = REGISTRY[spec.name].binary_only
    detector, alarms = build_detector(spec), 0
    for chunk in chunks:
        inputs: list[Any] = (chunk == 1.0).tolist() if binary_only else chunk.tolist()
        for value in inputs:
            detector.update(value)
            if detector.drift_detected:
                alarms += 1
                detector = build_detector(spec)
    return alarms


def _chunks(values: np.ndarray) -> Iterator[np.ndarray]:
    for at in range(0, len(values), CHUNK):
        yield values[at : at + CHUNK]


# -- part 1: the command ------------------------------------------------------------------


@dataclass
class Command:
    """The calibrate command's detector files and wall times, per budget (by name)."""

    files: dict[str, DetectorFile]
    seconds: dict[str, float]
    paths: dict[str, Path]
    reference: Path


def run_command(folder: Path, predictions: int, max_values: int = MAX_VALUES) -> Command:
    """``driftstream simulate`` the reference, then ``driftstream calibrate`` it at every
    budget, side by side; the detector files."""
    driftstream = str(Path(sys.executable).with_name("driftstream"))
    env = clean_environment()
    reference = folder / "reference.jsonl"
    simulate_argv = [driftstream, "simulate", "-m", f"{MODEL}=stable", "--events"]
    simulate_argv += [str(predictions), "--seed", str(REFERENCE_SEED), "--to-file", str(reference)]
    subprocess.run(simulate_argv, env=env, check=True, capture_output=True)
    children: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    paths: dict[str, Path] = {}
    for value in BUDGETS:
        name = budget_name(value)
        paths[name] = folder / f"detectors-{name}.json"
        argv = [driftstream, "calibrate", str(reference), "--out", str(paths[name])]
        argv += ["--false-alarms-per-million", name]
        if max_values != MAX_VALUES:
            argv += ["--max-values", str(max_values)]
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children[name] = (child, time.perf_counter())

    def finished(name: str) -> tuple[str, float, int, bytes]:
        child, began = children[name]
        out, err = child.communicate()
        return name, time.perf_counter() - began, child.returncode, out + err

    seconds: dict[str, float] = {}
    with ThreadPoolExecutor(len(children)) as waiting:  # each command's own wall time
        for name, took, code, output in waiting.map(finished, list(children)):
            if code:
                raise RuntimeError(f"calibrate at {name}/M failed: {output.decode()[-2000:]}")
            seconds[name] = took
            progress(f"driftstream calibrate at {name}/M: {took:.1f} s")
    files = {name: read_detector_file(path) for name, path in paths.items()}
    return Command(files, seconds, paths, reference)


def configs(paths: dict[str, Path]) -> dict[str, DetectorConfig]:
    """Each detector file's configuration as the replay makes it (``--detectors FILE``), and
    the defaults."""
    settings = Settings()
    result = {
        name: DetectorConfig.from_settings(settings.detectors.model_copy(update={"file": path}))
        for name, path in paths.items()
    }
    result[DEFAULTS] = detector_config(settings)
    return result


@dataclass
class Reference:
    """Per signal of the reference: the default detectors (described) and their median delay
    to detect the standard shift; the signals constant in the reference."""

    defaults: dict[str, str] = field(default_factory=dict)
    delays: dict[str, int | None] = field(default_factory=dict)
    constant: set[str] = field(default_factory=set)


def default_delays(reference: Path) -> Reference:
    """The default detectors' delays on the reference's signals, measured as the calibrate
    command measures its own (:class:`Reference`)."""
    settings = Settings()
    config = detector_config(settings)
    with reference.open("rb") as lines:
        events = [e for e in scan_event_lines(lines, str(reference)) if not _invalid(e)]
    values = signal_values(events, settings, config)[MODEL]  # type: ignore[arg-type]
    result = Reference()
    result.constant = {name for name, (_, series) in values.items() if len(set(series)) == 1}
    for name, (signal, series) in values.items():
        specs = config.for_model(MODEL).detectors_for(signal)
        if specs:
            found = budget.detection_delays(
                specs, series, binary=signal.binary, shift_sd=SHIFT_SD, runs=DELAY_RUNS
            )
            result.delays[name] = budget.median_delay(found)
            result.defaults[name] = describe(specs)
    return result


def _invalid(event: object) -> bool:
    return not isinstance(event, PredictionEvent | LabelEvent)


# -- part 2: fresh stable streams ---------------------------------------------------------


@dataclass
class Fresh:
    """One fresh stable stream: per configuration and signal, (values, alarms); per
    configuration the replay's alerts by kind and by signal; the CPU seconds it took."""

    seed: int
    predictions: int
    alarms: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    alerts: dict[str, dict[str, int]] = field(default_factory=dict)
    alerted: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0


def _feeding(
    events: Iterable[PredictionEvent | LabelEvent], backtests: dict[str, Backtest]
) -> Iterator[PredictionEvent | LabelEvent]:
    """``events``, each also fed to every backtest in the replay's batches (one pass over a
    stream too long to keep)."""
    batch: list[PredictionEvent | LabelEvent] = []
    for event in events:
        batch.append(event)
        yield event
        if len(batch) == BATCH_EVENTS:
            for backtest in backtests.values():
                backtest.process_many(batch)
            batch = []
    for backtest in backtests.values():
        backtest.process_many(batch)
        backtest.finish()


def run_fresh(seed: int, predictions: int, paths: dict[str, Path]) -> Fresh:
    """A fresh stable stream: every signal's values and each configuration's alarms on them,
    and the replay's alerts with each configuration."""
    began = time.process_time()
    settings = Settings()
    chosen = configs(paths)
    backtests = {name: replay_of(settings, config) for name, config in chosen.items()}
    traffic = ModelTraffic(MODEL, Scenario.STABLE, predictions, seed)
    stream = _feeding(simulate([traffic]), backtests)
    values = signal_values(stream, settings, chosen[DEFAULTS])[MODEL]
    fresh = Fresh(seed, predictions)
    signals = read_detector_file(next(iter(paths.values()))).models[MODEL]
    for name, config in chosen.items():
        counted: dict[str, tuple[int, int]] = {}
        for signal_name in signals:
            signal, series = values.get(signal_name, (None, []))
            if signal is None:
                continue
            array = np.asarray(series, dtype=float)
            specs = config.for_model(MODEL).detectors_for(signal)
            alarms = sum(count_alarms(spec, _chunks(array)) for spec in specs)
            counted[signal_name] = (len(array), alarms)
        fresh.alarms[name] = counted
        kinds: dict[str, int] = {}
        alerted: dict[str, int] = {}
        for alert in backtests[name].alerts:
            kinds[alert.kind] = kinds.get(alert.kind, 0) + 1
            alerted[alert.signal] = alerted.get(alert.signal, 0) + 1
        fresh.alerts[name] = kinds
        fresh.alerted[name] = alerted
    fresh.seconds = time.process_time() - began
    return fresh


# -- part 3: synthetic references ---------------------------------------------------------


def draw(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` values of the synthetic process ``kind``.

    >>> round(float(draw("Bernoulli(0.1)", np.random.default_rng(0), 100_000).mean()), 2)
    0.1
    """
    if kind == "N(0, 1)":
        return rng.normal(0.0, 1.0, n)
    return (rng.random(n) < 0.1).astype(float)


@dataclass(frozen=True)
class Synthetic:
    """One detector on one synthetic reference at one budget: its setting and how it was set,
    the expected rate, its alarms on a fresh stream of ``values``, the CPU seconds it took."""

    kind: str
    detector: str
    budget: float
    spec: DetectorSpec
    method: str
    expected: float | None
    alarms: int
    values: int
    seconds: float

    @property
    def per_million(self) -> float:
        return self.alarms / self.values * 1e6


def run_synthetic(
    kind: str, detector: str, value: float, values: int, max_values: int = MAX_VALUES
) -> Synthetic:
    """Calibrate ``detector`` on a reference of ``kind`` at budget ``value``, then count its
    alarms on a fresh stream of the process (seed 1; the reference is seed 0)."""
    began = time.process_time()
    reference = draw(kind, np.random.default_rng(0), SYNTHETIC_REFERENCE).tolist()
    binary = kind != "N(0, 1)"
    chosen = budget.calibrate_detector(
        DetectorSpec(name=detector),
        reference,
        budget=value,
        binary=binary,
        max_values=max_values,
    )
    rng = np.random.default_rng(1)
    sizes = [CHUNK] * (values // CHUNK) + ([values % CHUNK] if values % CHUNK else [])
    alarms = count_alarms(chosen.spec, (draw(kind, rng, n) for n in sizes))
    return Synthetic(
        kind,
        detector,
        value,
        chosen.spec,
        chosen.method,
        chosen.false_alarms_per_million,
        alarms,
        values,
        time.process_time() - began,
    )


# -- part 4: the simulator's drifts -------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """One drifting stream with one configuration: predictions served from the drift start
    until the first alert of the watched signal (None: none), the signals of the alerts
    detected before the start (false)."""

    scenario: Scenario
    seed: int
    name: str
    delay: int | None
    false_alerts: tuple[str, ...]


def first_delay(
    alerts: Sequence[DriftAlert], signal: str, times: Sequence[Any], start: int
) -> int | None:
    """Predictions served from index ``start`` until the first alert of ``signal`` detected
    at or after that prediction's time (``times``: the predictions' timestamps in order). A
    concept alert is detected when the label that raised it came, and may be stamped with a
    prediction from before the drift (its ``event_time``): what counts is ``detected_at``.

    >>> from datetime import datetime, timedelta
    >>> t0 = datetime(2026, 1, 1)
    >>> times = [t0 + timedelta(seconds=i) for i in range(10)]
    >>> class Alert:  # raised at second 8.5 by a late label of the prediction of second 1
    ...     signal, event_time = "error_rate", times[1]
    ...     detected_at = times[8] + timedelta(seconds=0.5)
    >>> first_delay([Alert()], "error_rate", times, 3), first_delay([Alert()], "score", times, 3)
    (6, None)
    """
    begin = times[start]
    raised = [a.detected_at for a in alerts if a.signal == signal and a.detected_at >= begin]
    return bisect_right(times, min(raised)) - start if raised else None


def run_drift(
    scenario: Scenario, seed: int, predictions: int, paths: dict[str, Path]
) -> list[Drift]:
    """One drifting stream through the replay core with each configuration."""
    traffic = ModelTraffic(MODEL, scenario, predictions, seed)
    events = list(simulate([traffic]))
    times = [e.timestamp for e in events if isinstance(e, PredictionEvent)]
    start = traffic.truth.drift_start_index
    watched = scenario.watched_signal
    if start is None or watched is None:
        raise ValueError(f"{scenario} has no drift")
    settings = Settings()
    result = []
    for name, config in configs(paths).items():
        backtest = replay_of(settings, config)
        for at in range(0, len(events), BATCH_EVENTS):
            backtest.process_many(events[at : at + BATCH_EVENTS])
        backtest.finish()
        alerts = backtest.alerts
        false_alerts = tuple(a.signal for a in alerts if a.detected_at < times[start])
        result.append(
            Drift(scenario, seed, name, first_delay(alerts, watched, times, start), false_alerts)
        )
    return result


# -- all of it ----------------------------------------------------------------------------


@dataclass
class Measured:
    """Everything the section shows."""

    command: Command
    reference: Reference
    fresh: list[Fresh]
    synthetic: list[Synthetic]
    drifts: list[Drift]
    seconds: float
    jobs: int


@dataclass(frozen=True)
class Sizes:
    """The sizes of a run (the command line's)."""

    reference: int
    fresh: int
    synthetic: int
    drifting: int
    max_values: int = MAX_VALUES


def measure(sizes: Sizes, jobs: int) -> Measured:
    """The four parts: the command first, then the rest in ``jobs`` processes (the longest
    work first)."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as folder:
        command = run_command(Path(folder), sizes.reference, sizes.max_values)
        paths = command.paths
        fresh: list[Fresh] = []
        synthetic: list[Synthetic] = []
        drifts: list[Drift] = []
        reference = Reference()
        with ProcessPoolExecutor(jobs) as pool:
            futures: dict[Future[Any], Callable[[Any], str]] = {}

            def took_fresh(result: Fresh) -> str:
                fresh.append(result)
                return f"fresh stable stream seed {result.seed}: {result.seconds:.1f} s CPU"

            def took_synthetic(result: Synthetic) -> str:
                synthetic.append(result)
                return (
                    f"{result.detector} on {result.kind} at {result.budget:g}/M:"
                    f" {result.alarms} alarms in {result.values:,} values"
                    f" ({result.seconds:.1f} s CPU)"
                )

            def took_drift(result: list[Drift]) -> str:
                drifts.extend(result)
                first = result[0]
                found = ", ".join(f"{configuration(d.name)} {d.delay}" for d in result)
                return f"{first.scenario} seed {first.seed}: delays {found}"

            def took_delays(result: Reference) -> str:
                nonlocal reference
                reference = result
                return "the default detectors' delays on the reference"

            for seed in FRESH_SEEDS:
                futures[pool.submit(run_fresh, seed, sizes.fresh, paths)] = took_fresh
            for kind, detectors in SYNTHETIC.items():
                for detector in detectors:
                    for value in SYNTHETIC_BUDGETS:
                        job = pool.submit(
                            run_synthetic, kind, detector, value, sizes.synthetic, sizes.max_values
                        )
                        futures[job] = took_synthetic
            for scenario in DRIFTS:
                for seed in DRIFT_SEEDS:
                    drift = pool.submit(run_drift, scenario, seed, sizes.drifting, paths)
                    futures[drift] = took_drift
            futures[pool.submit(default_delays, command.reference)] = took_delays
            for future in as_completed(futures):
                progress(futures[future](future.result()))
    return Measured(
        command,
        reference,
        sorted(fresh, key=lambda f: f.seed),
        synthetic,
        sorted(drifts, key=lambda d: (DRIFTS.index(d.scenario), d.seed)),
        time.perf_counter() - began,
        jobs,
    )


def describe(specs: Sequence[DetectorSpec]) -> str:
    """``adwin delta=0.0017, page_hinkley threshold=48``: detectors and the parameters set
    (the registry's defaults otherwise).

    >>> describe([DetectorSpec(name="adwin", params={"delta": 0.0017}), DetectorSpec(name="ddm")])
    'adwin delta=0.0017, ddm'
    """
    parts = []
    for spec in specs:
        params = " ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in spec.params.items()
        )
        parts.append(f"{spec.name} {params}".strip())
    return ", ".join(parts)


def _delay(value: float | None) -> str:
    return "missed" if value is None else f"{value:,.0f}"


def _number(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _alerts(signals: Sequence[str]) -> str:
    """``0``, or ``2 (`score`, `feature:age`)``."""
    if not signals:
        return "0"
    return f"{len(signals)} ({', '.join(f'`{s}`' for s in signals)})"


def _range(values: Sequence[int]) -> str:
    return "-" if not values else f"{min(values)}-{max(values)}"


def render(measured: Measured, sizes: Sizes, command: str, load_before: str) -> str:
    """The markdown section."""
    files = measured.command.files
    names = [*files, DEFAULTS]
    first = next(iter(files.values()))
    signals = list(first.models[MODEL])
    varying = [s for s in signals if s not in measured.reference.constant]
    streams = len(measured.fresh)

    def values_of(name: str, signal: str) -> int:
        return sum(f.alarms[name][signal][0] for f in measured.fresh if signal in f.alarms[name])

    def alarms_of(name: str, signal: str) -> int:
        return sum(f.alarms[name][signal][1] for f in measured.fresh if signal in f.alarms[name])

    def expected_of(name: str, signal: str) -> float:
        rate = files[name].models[MODEL][signal].false_alarms_per_million or 0.0
        return rate * values_of(name, signal) / 1e6

    setting_rows = [
        [
            f"`{s}`",
            *(describe(files[n].models[MODEL][s].detectors) for n in files),
            measured.reference.defaults.get(s, "?"),
        ]
        for s in varying
    ]
    rows = []
    for s in varying:
        row = [f"`{s}`", f"{values_of(DEFAULTS, s):,}"]
        for name in files:
            row += [f"{expected_of(name, s):.1f}", f"{alarms_of(name, s):,}"]
        row.append(f"{alarms_of(DEFAULTS, s):,}")
        row += [_delay(files[n].models[MODEL][s].median_delay) for n in files]
        row.append(_delay(measured.reference.delays.get(s)))
        rows.append(row)
    total = ["all of them", f"{sum(values_of(DEFAULTS, s) for s in varying):,}"]
    for name in files:
        total += [
            f"**{sum(expected_of(name, s) for s in varying):.1f}**",
            f"**{sum(alarms_of(name, s) for s in varying):,}**",
        ]
    total += [f"**{sum(alarms_of(DEFAULTS, s) for s in varying):,}**", "", "", ""]
    rows.append(total)
    constant_alarms = {n: sum(alarms_of(n, s) for s in measured.reference.constant) for n in names}

    alert_rows = []
    for name in names:
        data = [f.alerts[name].get("data", 0) for f in measured.fresh]
        concept = [f.alerts[name].get("concept", 0) for f in measured.fresh]
        by_signal: dict[str, int] = {}
        for f in measured.fresh:
            for signal, count in f.alerted[name].items():
                by_signal[signal] = by_signal.get(signal, 0) + count
        signals_text = ", ".join(
            f"`{signal}` {count}"
            for signal, count in sorted(by_signal.items(), key=lambda item: (-item[1], item[0]))
        )
        alert_rows.append(
            [
                configuration(name),
                f"{sum(data):,}",
                _range(data),
                f"{sum(concept):,}",
                signals_text or "-",
            ]
        )

    synthetic_rows = []
    for kind, detectors in SYNTHETIC.items():
        for detector in detectors:
            for value in SYNTHETIC_BUDGETS:
                run = next(
                    r
                    for r in measured.synthetic
                    if (r.kind, r.detector, r.budget) == (kind, detector, value)
                )
                synthetic_rows.append(
                    [
                        kind,
                        detector,
                        f"{value:g}",
                        f"{describe([run.spec])} ({run.method})",
                        "-" if run.expected is None else _number(run.expected),
                        f"{run.alarms:,}",
                        _number(run.per_million),
                    ]
                )

    drift_rows = []
    for scenario in DRIFTS:
        for name in names:
            runs = [d for d in measured.drifts if d.scenario is scenario and d.name == name]
            drift_rows.append(
                [
                    f"`{scenario}` (`{scenario.watched_signal}`)",
                    configuration(name),
                    ", ".join(_delay(d.delay) for d in runs),
                    "; ".join(_alerts(d.false_alerts) for d in runs),
                ]
            )

    budgets = " and ".join(f"{configuration(n)}" for n in files)
    seconds = " and ".join(
        f"{measured.command.seconds[n]:.0f} s at {configuration(n)}" for n in files
    )
    cpu = {
        "fresh streams": sum(f.seconds for f in measured.fresh),
        "synthetic": sum(r.seconds for r in measured.synthetic),
    }
    lines = [
        SECTION,
        "",
        f"{written(command)} At the default settings (no `DRIFTSTREAM_*` variable). The"
        f" reference: `driftstream simulate -m {MODEL}=stable --events {sizes.reference}"
        f" --seed {REFERENCE_SEED} --to-file reference.jsonl`, calibrated by `driftstream"
        " calibrate reference.jsonl --out FILE --false-alarms-per-million B` at budgets"
        f" {budgets} (false alarms per million values of a signal), as whole processes side by"
        f" side: {seconds} (wall). Fresh stable streams of the same model id, seeds"
        f" {FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]}, {sizes.fresh:,} predictions each: their signal"
        " values (the calibrate command's `signal_values`), and on them each signal's"
        " detectors of each file and the defaults, each rebuilt after its alarm as the bank"
        " does; every alarm is false. Expected: the file's rate times the values. Delay: the"
        f" median values of the signal to detect a shift of {SHIFT_SD:g} standard deviations"
        f" after 5,000 normal values, {DELAY_RUNS} runs on the reference resampled (the files'"
        " figure; the defaults' measured the same way).",
        "",
        *machine(LIBRARIES, load_before),
        "",
        *table(
            ["signal", *(f"detectors at {configuration(n)}" for n in files), "defaults"],
            setting_rows,
        ),
        "",
        *table(
            [
                "signal",
                "values",
                *(
                    f"{head} {configuration(n)}"
                    for n in files
                    for head in ("expected at", "false alarms at")
                ),
                "false alarms, defaults",
                *(f"delay at {configuration(n)}" for n in files),
                "delay, defaults",
            ],
            rows,
            numeric=".r" + "rr" * len(files) + "r" + "r" * len(files) + "r",
        ),
        "",
        f"{len(varying)} signals were calibrated along a knob;"
        f" {len(measured.reference.constant)} more"
        " (`missing:*`, `invalid:*`: constant 0 in the reference) kept their detectors, expected"
        " no false alarm and raised "
        + ", ".join(f"{constant_alarms[n]} at {configuration(n)}" for n in names)
        + ".",
        "",
        f"Alerts of the replay core (`replay_of` with each file, `process_many` in batches of"
        f" {BATCH_EVENTS:,} events; one alert per detector and episode, after the cooldown) on"
        f" the same {streams} fresh streams ({streams * sizes.fresh:,} predictions):",
        "",
        *table(
            ["detectors", "data alerts", "per stream", "concept alerts", "by signal"],
            alert_rows,
            numeric=".rrr.",
        ),
        "",
        f"Synthetic references of {SYNTHETIC_REFERENCE:,} values (seed 0), each detector with a"
        " knob calibrated alone (`budget.calibrate_detector`, as the command does: resampled"
        f" reference, at most {sizes.max_values:,} values per setting), then run on a fresh"
        " stream of the"
        f" same process ({sizes.synthetic:,} values, seed 1, not resampled):",
        "",
        *table(
            [
                "reference",
                "detector",
                "budget per million",
                "setting (how)",
                "expected per million",
                "false alarms",
                "measured per million",
            ],
            synthetic_rows,
            numeric="..r.rrr",
        ),
        "",
        f"The simulator's drifts, seeds {DRIFT_SEEDS[0]}-{DRIFT_SEEDS[-1]}, {sizes.drifting:,}"
        " predictions, the change at the middle, through the replay core with each file and the"
        " defaults. Delay: predictions served from the drift start until the first alert of"
        " the watched signal detected after it (its `detected_at`: for a concept alert, when"
        " the label that raised it came, whatever the time of its prediction); false alerts:"
        " alerts (any signal) detected before the drift start:",
        "",
        *table(
            ["scenario (watched signal)", "detectors", "delay per seed", "false alerts per seed"],
            drift_rows,
        ),
        "",
        f"The whole run took {measured.seconds:,.0f} s (wall, {measured.jobs} processes);"
        f" CPU of the fresh streams {cpu['fresh streams']:,.0f} s, of the synthetic streams"
        f" {cpu['synthetic']:,.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and publish the section."""
    options = parser("python -m bench.calibration", __doc__)
    options.add_argument("--reference", type=int, default=20_000, help="reference predictions")
    options.add_argument("--fresh", type=int, default=100_000, help="predictions per fresh stream")
    options.add_argument(
        "--synthetic-values", type=int, default=5_000_000, help="fresh synthetic values"
    )
    options.add_argument("--drifting", type=int, default=20_000, help="predictions, drift runs")
    options.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    options.add_argument(
        "--max-values", type=int, default=MAX_VALUES, help="resampled values per setting tried"
    )
    args = options.parse_args(argv)
    if args.quick:
        args.reference, args.fresh, args.synthetic_values = 5_000, 5_000, 200_000
        args.drifting, args.max_values = 4_000, 100_000
    sizes = Sizes(args.reference, args.fresh, args.synthetic_values, args.drifting, args.max_values)
    command = (
        f"{COMMAND} --reference {sizes.reference} --fresh {sizes.fresh} --synthetic-values"
        f" {sizes.synthetic} --drifting {sizes.drifting} --max-values {sizes.max_values}"
    )
    for name in [k for k in os.environ if k.startswith("DRIFTSTREAM_")]:
        del os.environ[name]  # the default settings, here and in the processes
    load_before = load_average()
    measured = measure(sizes, args.jobs)
    publish(render(measured, sizes, command, load_before), args.output)


if __name__ == "__main__":
    main()
