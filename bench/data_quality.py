"""Detection of data-quality, traffic and label-health changes on seeded simulator streams.

Each run is one model of ``producers.simulator`` under a scenario whose change comes at the
middle of the stream: ``category-shift``, ``missing-feature``, ``surge``, ``labels-stop`` and
``labels-late``, and ``stable`` (no change). Each stream goes through ``pipeline.backtest``
twice: at driftstream's default configuration, and, as the baseline, with river's ADWIN at its
library defaults on every numeric and binary data signal (river has no detector for
categories, so ``category:*`` keeps the G-test in both). Measured per scenario:

- delay: event-time seconds from the change to the first alert on the scenario's watched
  signal (``Scenario.watched_signal``), and the model's predictions in between;
- false alarms: alerts of any signal stamped before the change (all of ``stable``'s), per
  hour of unchanged event time.

Results go to the "## Data-quality, traffic and label-health detection" section of
``docs/benchmarks.md``::

    .venv/bin/python -m bench.data_quality [--seeds 5] [--predictions 20000] [--stable 100000]
"""

from __future__ import annotations

import heapq
import math
import os
import random
import statistics
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench.results import load_average, machine, parser, progress, publish, table, written
from detectors.config import BankConfig, DetectorConfig
from detectors.registry import DetectorSpec
from detectors.volume import SILENCE_FLOOR_SECONDS
from pipeline.backtest import Backtest
from producers.scenarios import Scenario
from producers.simulator import ModelTraffic, simulate
from schemas.events import LabelEvent, PredictionEvent

SECTION = "## Data-quality, traffic and label-health detection"
COMMAND = ".venv/bin/python -m bench.data_quality"
SCENARIOS = (
    Scenario.STABLE,
    Scenario.CATEGORY_SHIFT,
    Scenario.MISSING_FEATURE,
    Scenario.SURGE,
    Scenario.LABELS_STOP,
    Scenario.LABELS_LATE,
)
RIVER_ADWIN = DetectorSpec(name="adwin", params={"delta": 0.002, "clock": 32, "grace_period": 10})
"""river's ``drift.ADWIN()`` defaults."""
CONFIGS = {
    "driftstream default": DetectorConfig(),
    "river ADWIN() on every data signal": DetectorConfig(
        default=BankConfig(
            data_detectors=(RIVER_ADWIN,),
            signal_detectors={"volume": (RIVER_ADWIN,), "label_delay": (RIVER_ADWIN,)},
        )
    ),
}


@dataclass(frozen=True)
class Run:
    """What one configuration did on one stream."""

    false_alarms: int
    unchanged_seconds: float
    delay_seconds: float | None
    delay_predictions: int | None


def run_stream(scenario: Scenario, seed: int, predictions: int) -> dict[str, Run]:
    """One seeded stream through the backtest under each configuration."""
    traffic = ModelTraffic("m", scenario, n_predictions=predictions, seed=seed)
    events = list(simulate([traffic]))
    start = traffic.truth.drift_start_time
    times = [e.timestamp for e in events if isinstance(e, PredictionEvent)]
    end = start or times[-1]
    runs = {}
    for name, config in CONFIGS.items():
        backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000, config=config)
        alerts = [alert for event in events for alert in backtest.process(event)]
        alerts += backtest.finish()
        first = None
        if start is not None:
            hits = (a.event_time for a in alerts if a.signal == scenario.watched_signal)
            first = min((t for t in hits if t >= start), default=None)
        runs[name] = Run(
            false_alarms=sum(start is None or a.event_time < start for a in alerts),
            unchanged_seconds=(end - times[0]).total_seconds(),
            delay_seconds=None if first is None else (first - end).total_seconds(),
            delay_predictions=None if first is None else sum(end <= t <= first for t in times),
        )
    return runs


@dataclass
class Score:
    """One configuration over the seeds of a scenario."""

    false_alarms: int = 0
    unchanged_seconds: float = 0.0
    delays: list[float] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)
    missed: int = 0

    def add(self, run: Run) -> None:
        self.false_alarms += run.false_alarms
        self.unchanged_seconds += run.unchanged_seconds
        if run.delay_seconds is None or run.delay_predictions is None:
            self.missed += 1
        else:
            self.delays.append(run.delay_seconds)
            self.predictions.append(run.delay_predictions)


def measure(
    seeds: int, predictions: int, stable: int, jobs: int
) -> dict[tuple[Scenario, str], Score]:
    """Every scenario, ``seeds`` seeds each, in ``jobs`` processes (``stable`` predictions per
    stable run, ``predictions`` per changing one)."""
    scores = {(s, name): Score() for s in SCENARIOS for name in CONFIGS}
    with ProcessPoolExecutor(jobs) as pool:
        futures = {
            pool.submit(
                run_stream, scenario, seed, stable if scenario is Scenario.STABLE else predictions
            ): (scenario, seed)
            for scenario in SCENARIOS
            for seed in range(seeds)
        }
        for future in as_completed(futures):
            scenario, seed = futures[future]
            progress(f"{scenario} seed {seed} done")
            for name, run in future.result().items():
                scores[scenario, name].add(run)
    return scores


def _spread(values: Sequence[float], missed: int, unit: str = "") -> str:
    if not values:
        return "missed all"
    text = f"{statistics.median(values):,.0f}{unit} ({min(values):,.0f}-{max(values):,.0f})"
    return f"{text}, missed {missed}" if missed else text


def render(
    scores: dict[tuple[Scenario, str], Score],
    seeds: int,
    predictions: int,
    stable: int,
    load: str,
    shaped: list[str] | None = None,
) -> str:
    """The section: how, machine, one row per scenario and configuration, the ratios."""
    rows = []
    for scenario in SCENARIOS:
        for name in CONFIGS:
            score = scores[scenario, name]
            changed = scenario is not Scenario.STABLE
            rows.append(
                [
                    scenario.value,
                    scenario.watched_signal or "(any)",
                    name,
                    _spread(score.delays, score.missed, " s") if changed else "",
                    _spread(score.predictions, score.missed) if changed else "",
                    f"{score.false_alarms / score.unchanged_seconds * 3600:.2f}",
                    f"{score.false_alarms} in {score.unchanged_seconds / 3600:.1f} h",
                ]
            )
    ours, theirs = CONFIGS
    alarms = {name: sum(scores[s, name].false_alarms for s in SCENARIOS) for name in CONFIGS}
    ratios = [
        statistics.median(scores[s, theirs].delays) / statistics.median(scores[s, ours].delays)
        for s in SCENARIOS[1:]
        if scores[s, ours].delays and scores[s, theirs].delays
    ]
    lines = [
        SECTION,
        "",
        f"{written(COMMAND + f' --seeds {seeds} --predictions {predictions} --stable {stable}')}"
        f" Simulator streams of one model, seeds 0-{seeds - 1}, {predictions:,} predictions"
        f" each ({stable:,} for `stable`) at 10 per second (5x after a surge), 80% labelled,"
        " labels late by 30 s on average (120 s after `labels-late`); the change comes at the"
        " middle. Each stream goes"
        " through the replay core (`pipeline.backtest`) at driftstream's defaults and, as the"
        " baseline, with river's ADWIN at library defaults on every numeric and binary data"
        " signal (`category:*` keeps the G-test: river has no categorical detector). Delay:"
        " event-time seconds, and predictions, from the change to the first alert on the"
        " scenario's signal, median (min-max) over seeds. False alarms: alerts of any signal"
        " stamped before the change, per hour of unchanged event time.",
        "",
        *machine(("river", "pydantic"), load),
        "",
        *table(
            [
                "scenario",
                "signal",
                "detectors",
                "delay",
                "predictions",
                "false alarms per hour",
                "false alarms",
            ],
            rows,
            numeric=".....rr",
        ),
        "",
        f"False alarms in all: {alarms[ours]} at driftstream's defaults, {alarms[theirs]} with"
        " river's ADWIN() defaults. Baseline delay / driftstream delay (medians, per scenario"
        " where both detected): "
        + ", ".join(f"{ratio:.2f}" for ratio in ratios)
        + ". Label health waits for a bucket of predictions to close, the label horizon (learned:"
        " twice the 99th percentile of the model's delays, at most `label_horizon_seconds`)"
        " plus an interval after it.",
        *(["", *shaped] if shaped else []),
    ]
    return "\n".join(lines) + "\n"


# -- streams shaped unlike the simulator's (issue 28) ------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SHAPED_CONFIGS = {
    "driftstream default": DetectorConfig(),
    "before: ADWIN on 10 s volume, fixed 600 s horizon": DetectorConfig(
        default=BankConfig(
            signal_detectors={
                "volume": (
                    DetectorSpec(
                        name="adwin", params={"delta": 1e-4, "clock": 1, "grace_period": 10}
                    ),
                )
            },
            volume_adaptive_interval=False,
            label_horizon_seconds=600.0,
            label_horizon_learned=False,
        )
    ),
}
"""Today's detectors against those before issue 28 (the volume ADWIN, 10 s intervals, a label
horizon fixed at 600 s), on the same streams."""
WITHOUT_SILENCE = {"before: ADWIN on 10 s volume, fixed 600 s horizon"}
"""Configurations whose silence alerts are left out: the silence of a model (``volume``,
detector ``silence``) came with issue 28 and cannot be configured away."""

Rate = Callable[[float], float]


@dataclass(frozen=True)
class Shaped:
    """A generated stream of one model: its request rate over event time, its labels, and the
    change (None: a quiet stream, every alert a false alarm)."""

    name: str
    signal: str | None
    seconds: float
    rate: Rate
    change: float | None = None
    delay: Callable[[random.Random], float] | None = None
    """A label's delay (None: no labels); labelled with probability 0.8."""
    labels_stop: bool = False
    burst: float = 1.0
    """Mean requests per arrival (geometric), at the same instant: a bursty stream."""
    companion: float = 0.0
    """The rate of a second model, ``other``, sending steadily all along (its alerts are not
    counted): the event-time clock across models that sees ``m`` go silent. With one, the
    delay runs from ``m``'s last prediction before the change."""


def _steady(rate: float) -> Rate:
    return lambda _t: rate


def _exponential(mean: float) -> Callable[[random.Random], float]:
    return lambda rng: rng.expovariate(1 / mean)


def _half_hour(rng: random.Random) -> float:
    return rng.uniform(1500.0, 2100.0)


SHAPED = (
    Shaped("surge 5x at 100/s", "volume", 240.0, lambda t: 500.0 if t >= 200 else 100.0, 200.0),
    Shaped(
        "drop to zero at 100/s (60 s)",
        "volume",
        320.0,
        lambda t: 0.0 if 200 <= t < 260 else 100.0,
        200.0,
    ),
    Shaped(
        "labels stop, 2 s delays",
        "label_coverage",
        1200.0,
        _steady(10.0),
        200.0,
        _exponential(2.0),
        labels_stop=True,
    ),
    Shaped(
        "labels stop, 30 min delays",
        "label_coverage",
        4 * 3600.0 + 5400.0,
        _steady(1.0),
        4 * 3600.0,
        _half_hour,
        labels_stop=True,
    ),
    Shaped("stable, 20,000 at 10/s", None, 2000.0, _steady(10.0), None, _exponential(30.0)),
    Shaped(
        "low traffic: 1 per 8.7 min, labels 30 min late",
        None,
        30 * 86400.0,
        _steady(1 / 522),
        None,
        _half_hour,
    ),
    Shaped(
        "bursty: bursts of 20 on average, 10/s",
        None,
        2000.0,
        _steady(0.5),
        None,
        _exponential(30.0),
        burst=20.0,
    ),
    Shaped(
        "silent model at 10/s, another at 1/s",
        "volume",
        800.0,
        lambda t: 0.0 if t >= 600 else 10.0,
        600.0,
        companion=1.0,
    ),
    Shaped(
        "silent model at 0.2/s, another at 1/s",
        "volume",
        4600.0,
        lambda t: 0.0 if t >= 4000 else 0.2,
        4000.0,
        companion=1.0,
    ),
    Shaped(
        "diurnal: 0.1-0.4/s over a day, 2 days",
        None,
        2 * 86400.0,
        lambda t: 0.2 * 2 ** math.sin(2 * math.pi * t / 86400),
        None,
    ),
)


def shaped_events(stream: Shaped, seed: int) -> Iterator[PredictionEvent | LabelEvent]:
    """``stream``'s events in the order they become known (a thinned Poisson process of
    arrivals, each of ``burst`` requests on average)."""
    rng = random.Random(seed)
    peak = max(stream.rate(float(t)) for t in range(int(stream.seconds) + 1)) * 1.5 or 1.0
    pending: list[tuple[float, int, LabelEvent]] = []
    t, i = 0.0, 0
    other = rng.expovariate(stream.companion) if stream.companion else math.inf
    while (t := t + rng.expovariate(peak)) < stream.seconds:
        while other <= t:
            i += 1
            yield _prediction("other", i, other)
            other += rng.expovariate(stream.companion)
        if rng.random() * peak >= stream.rate(t):
            continue
        size = (
            1
            if stream.burst == 1
            else 1 + int(math.log(rng.random()) / math.log(1 - 1 / stream.burst))
        )
        while pending and pending[0][0] <= t:
            yield heapq.heappop(pending)[2]
        for _ in range(size):
            i += 1
            yield _prediction("m", i, t)
            stopped = stream.labels_stop and stream.change is not None and t >= stream.change
            if stream.delay is not None and not stopped and rng.random() < 0.8:
                known = t + stream.delay(rng)
                label = LabelEvent(
                    request_id=f"r{i}",
                    model_id="m",
                    timestamp=T0 + timedelta(seconds=known),
                    label=1,
                )
                heapq.heappush(pending, (known, i, label))
    while pending:
        yield heapq.heappop(pending)[2]


def _prediction(model: str, i: int, seconds: float) -> PredictionEvent:
    return PredictionEvent(
        request_id=f"r{i}",
        model_id=model,
        model_version="1",
        timestamp=T0 + timedelta(seconds=seconds),
        features={},
        prediction=1,
    )


@dataclass(frozen=True)
class ShapedRun:
    """What one configuration did on one shaped stream."""

    false_alarms: int
    delay_seconds: float | None
    alerts_after: int
    late_false_alarms: int = 0
    """Of a quiet stream's false alarms, those in its second half (after a diurnal cycle)."""
    silences: int = 0
    """Its silence alerts (any time)."""
    raised_seconds: float | None = None
    """With a companion: how long after the silent model's last prediction the replay raised
    its silence, in the event time of the event whose processing raised it."""


def run_shaped(index: int, seed: int) -> dict[str, ShapedRun]:
    """Shaped stream ``index`` of :data:`SHAPED`, seeded, through the replay under each
    configuration."""
    stream = SHAPED[index]
    events = list(shaped_events(stream, seed))
    runs = {}
    change = None if stream.change is None else T0 + timedelta(seconds=stream.change)
    if stream.companion and change is not None:  # from the silent model's last prediction
        change = max(
            e.timestamp
            for e in events
            if isinstance(e, PredictionEvent) and e.model_id == "m" and e.timestamp < change
        )
    for name, config in SHAPED_CONFIGS.items():
        backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000, config=config)
        alerts = [
            a
            for a in backtest.process_many(events) + backtest.finish()
            if a.model_id == "m" and (a.detector != "silence" or name not in WITHOUT_SILENCE)
        ]
        before = [a for a in alerts if change is None or a.event_time < change]
        half = T0 + timedelta(seconds=stream.seconds / 2)
        after = [a for a in alerts if change is not None and a.event_time >= change]
        hits = [a.event_time for a in after if a.signal == stream.signal]
        runs[name] = ShapedRun(
            false_alarms=len(before),
            delay_seconds=None
            if not hits or change is None
            else (min(hits) - change).total_seconds(),
            alerts_after=len(hits),
            late_false_alarms=sum(change is None and a.event_time >= half for a in before),
            silences=sum(a.detector == "silence" for a in alerts),
            raised_seconds=_raised(events, config, change)
            if stream.companion and change is not None and name not in WITHOUT_SILENCE
            else None,
        )
    return runs


def _raised(
    events: Sequence[PredictionEvent | LabelEvent], config: DetectorConfig, last: datetime
) -> float | None:
    """The replay again, one event at a time: when (event time, after ``last``) the silence of
    ``m`` came out."""
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000, config=config)
    for event in events:
        if any(a.model_id == "m" and a.detector == "silence" for a in backtest.process(event)):
            return (event.timestamp - last).total_seconds()
    return None


def measure_shaped(seeds: int, jobs: int) -> dict[tuple[int, str], list[ShapedRun]]:
    """Every shaped stream, ``seeds`` seeds each (10 for the stable one)."""
    runs: dict[tuple[int, str], list[ShapedRun]] = {
        (index, name): [] for index in range(len(SHAPED)) for name in SHAPED_CONFIGS
    }
    with ProcessPoolExecutor(jobs) as pool:
        futures = {
            pool.submit(run_shaped, index, seed): (index, seed)
            for index, stream in enumerate(SHAPED)
            for seed in range(10 if stream.name.startswith("stable") else seeds)
        }
        for future in as_completed(futures):
            index, seed = futures[future]
            progress(f"{SHAPED[index].name} seed {seed} done")
            for name, run in future.result().items():
                runs[index, name].append(run)
    return runs


def render_shaped(runs: dict[tuple[int, str], list[ShapedRun]], seeds: int) -> list[str]:
    """The shaped streams' table and how they were made."""
    rows = []
    for index, stream in enumerate(SHAPED):
        for name in SHAPED_CONFIGS:
            got = runs[index, name]
            delays = [r.delay_seconds for r in got if r.delay_seconds is not None]
            missed = sum(r.delay_seconds is None for r in got)
            rows.append(
                [
                    stream.name,
                    stream.signal or "(any)",
                    name,
                    _spread(delays, missed, " s") if stream.change is not None else "",
                    str(max((r.alerts_after for r in got), default=0))
                    if stream.change is not None
                    else "",
                    f"{sum(r.false_alarms for r in got)} in {len(got)} streams"
                    + (
                        f" ({sum(r.late_false_alarms for r in got)} in their second half)"
                        if stream.change is None
                        else ""
                    ),
                ]
            )
    raised = {
        stream.name: [r.raised_seconds for r in got if r.raised_seconds is not None]
        for index, stream in enumerate(SHAPED)
        if stream.companion
        for name, got in [(n, runs[index, n]) for n in SHAPED_CONFIGS if n not in WITHOUT_SILENCE]
    }
    quiet = [index for index, stream in enumerate(SHAPED) if stream.change is None]
    silences = sum(r.silences for index in quiet for r in runs[index, "driftstream default"])
    quiet_streams = sum(len(runs[index, "driftstream default"]) for index in quiet)
    return [
        "Streams shaped unlike the simulator's (issue 28), generated here: Poisson arrivals at"
        " the rate shown (the bursty one: arrivals of a geometric number of requests, mean 20,"
        " at 0.5 per second), 80% labelled (not the silent-model streams), label delays"
        " exponential (2 s, 30 s) or uniform 25-35 min; the changes at 200 s (4 h for the 30"
        " min labels; the silent models stop at 600 s and 4,000 s while a second model sends"
        f" one request a second to the end); seeds 0-{seeds - 1} (0-9 for the stable stream)."
        " Each goes through the replay at today's defaults and at those before issue 28 (ADWIN"
        " on `volume` at fixed 10 s intervals, a label horizon fixed at 600 s, no silence"
        " alerts). Delay: event-time seconds from the change (for a silent model: from its last"
        " prediction) to the first alert on the signal; alerts: the most alerts of that signal"
        " after the change in one stream; false alarms: alerts of any signal before the change"
        " (all of a quiet stream's).",
        "",
        *table(
            ["stream", "signal", "detectors", "delay", "alerts", "false alarms"],
            rows,
            numeric="...r.r",
        ),
        "",
        "A model that stops is **silent** (a `volume` alert of detector `silence`) once event"
        " time is a gap past its last prediction: the gap Poisson traffic at its learned"
        f" effective rate leaves once in 10,000 days, at least {SILENCE_FLOOR_SECONDS:.0f} s"
        " (the floor decides at 10/s and 100/s; 95 s at 0.2/s); the alert is stamped there,"
        " whether the model's next prediction reveals it (the drop to zero above: its first"
        " alert is the silence, where the `volume` values see the drop only when traffic"
        " resumes, after 60 s) or the detection processor's event-time clock across the models"
        " of its partition does, less the lateness (2 s). Raised, in the event time of the other"
        " model's event that revealed it, after the last prediction: "
        + "; ".join(
            f"{name}: {_spread(values, 0, ' s')}" for name, values in raised.items() if values
        )
        + f". Silence alerts on the quiet streams: {silences} in {quiet_streams} streams."
        " Silence of every model at once is not seen by event time (no clock goes on): the"
        " Kafka-native worker sees it by the wall clock once the broker says the stream is idle"
        " (`tests/integration/test_kafka_runtime.py`; not measured here).",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and publish the section."""
    options = parser("python -m bench.data_quality", __doc__)
    options.add_argument("--seeds", type=int, default=5, help="seeds per scenario")
    options.add_argument("--predictions", type=int, default=20_000, help="predictions per run")
    options.add_argument("--stable", type=int, default=100_000, help="predictions, stable runs")
    options.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = options.parse_args(argv)
    if args.quick:
        args.seeds, args.predictions, args.stable = 1, 16_000, 16_000
    load_before = load_average()
    scores = measure(args.seeds, args.predictions, args.stable, args.jobs)
    shaped = render_shaped(measure_shaped(args.seeds, args.jobs), args.seeds)
    publish(
        render(scores, args.seeds, args.predictions, args.stable, load_before, shaped),
        args.output,
    )


if __name__ == "__main__":
    main()
