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

import os
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from bench.report import load_average, machine, parser, progress, publish, table, written
from detectors.config import BankConfig, DetectorConfig
from detectors.registry import DetectorSpec
from pipeline.backtest import Backtest
from producers.scenarios import Scenario
from producers.simulator import ModelTraffic, simulate
from schemas.events import PredictionEvent

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
    scores: dict[tuple[Scenario, str], Score], seeds: int, predictions: int, stable: int, load: str
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
        + ". Label health waits for a bucket of predictions to close, a label horizon (600 s)"
        " plus an interval after it, so its alerts come about 620 s after the change.",
    ]
    return "\n".join(lines) + "\n"


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
    publish(render(scores, args.seeds, args.predictions, args.stable, load_before), args.output)


if __name__ == "__main__":
    main()
