"""The label-free accuracy estimate (:mod:`detectors.calibration`) against the realised accuracy
of the same predictions, on the simulator's scenarios.

Streams: the seeded simulator (``producers.simulator``, a frozen Hoeffding tree on loan data,
its default 2,000 warm-up draws), one model per stream, ``--predictions`` predictions, seeds
0..``--seeds``-1, labels late by 30 s on average, some early, some twice, 80% of requests
labelled unless the row says otherwise. Each stream goes through the replay core
(``stream_app.processors.replay_of``: the replay's :class:`~pipeline.backtest.Backtest` at the
default settings, ``process_many`` in the replay's batches of ``BATCH_EVENTS`` events). The
bank's estimate is read every ``EVERY`` predictions: the observations the replay's bank took
(in its order and batches) go through a second bank of the same configuration, cut after every
``EVERY``-th prediction, and its ``estimated_accuracy`` (the mean of the signal over the last
``recent_window`` predictions, 500) is read there; at the end that bank must agree with the
replay's (checked). A *window* is such a reading once the estimate covers a whole
``recent_window`` of predictions; its *realised* accuracy is that of the same predictions
that have a label in the recording (their first label; about 400 of 500 at 80% labelled).

Rows: ``stable`` (every window), ``data-drift`` on four model ids (the inputs' salaries shift
at the middle; windows wholly after the shift), ``abrupt`` (the concept changes at the middle;
windows wholly after), ``gradual`` (windows wholly after the change is complete),
``recurring`` (windows wholly inside the episode), and ``stable`` with 10% and 2% of requests
labelled. Results go to the "## Estimated accuracy" section of ``docs/benchmarks.md``
(``--quick``: 1 seed of 6,000 predictions, to ``bench-quick.md``)::

    .venv/bin/python -m bench.estimate [--seeds 3] [--predictions 20000] [--jobs 2]
        [--quick] [--output FILE]
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Literal

from bench.results import load_average, machine, parser, progress, publish, table, written
from detectors.bank import BankSummary, DetectorBank
from detectors.join_buffer import JoinedOutcome
from detectors.signals import ESTIMATED_ACCURACY
from pipeline.effects import Observation
from producers.scenarios import Scenario
from producers.simulator import LabelPolicy, ModelTraffic, simulate
from schemas.events import LabelEvent, PredictionEvent
from stream_app.cli.replay import BATCH_EVENTS
from stream_app.processors import replay_of
from stream_app.settings import Settings

SECTION = "## Estimated accuracy"
COMMAND = ".venv/bin/python -m bench.estimate"
LIBRARIES = ("numpy", "river", "pydantic")
EVERY = 100
"""Predictions between two readings of the estimate."""
PREDICTIONS = 20_000

Part = Literal["all", "after", "settled", "episode"]
"""Which windows of a stream count: every one, those wholly after the drift start, wholly
after the drift window (a gradual change complete), wholly inside the drift window (the
recurring episode)."""
PARTS: dict[Part, str] = {
    "all": "",
    "after": ", after the change",
    "settled": ", after the change",
    "episode": ", during the episode",
}


@dataclass(frozen=True)
class Row:
    """One row of the table: a scenario, its model ids, the labelled share, which windows."""

    scenario: Scenario
    models: tuple[str, ...]
    coverage: float
    part: Part

    def label(self, model: str) -> str:
        """The row's name in the table."""
        name = f"`{self.scenario}`"
        if len(self.models) > 1:
            name += f" model `{model}`"
        name += PARTS[self.part]
        if self.scenario is Scenario.DATA_DRIFT:
            name = name.replace("the change", "the shift")
        if self.coverage != LabelPolicy().coverage:
            name += f", label coverage {self.coverage:g}"
        return name


ROWS = (
    Row(Scenario.STABLE, ("m",), 0.8, "all"),
    Row(Scenario.DATA_DRIFT, ("m1", "m2", "m3", "m4"), 0.8, "after"),
    Row(Scenario.ABRUPT, ("m",), 0.8, "after"),
    Row(Scenario.GRADUAL, ("m",), 0.8, "settled"),
    Row(Scenario.RECURRING, ("m",), 0.8, "episode"),
    Row(Scenario.STABLE, ("m",), 0.1, "all"),
    Row(Scenario.STABLE, ("m",), 0.02, "all"),
)


@dataclass(frozen=True)
class Window:
    """One reading: the estimate, the realised accuracy of the same predictions (and how many
    of them had a label), the first and last prediction index it covers."""

    estimate: float
    realised: float
    labelled: int
    first: int
    last: int


@dataclass
class Stream:
    """One stream's windows, its outcomes, the prediction after which the estimate started
    (None: never), and the CPU seconds it took."""

    row: Row
    model: str
    seed: int
    windows: list[Window] = field(default_factory=list)
    outcomes: int = 0
    estimated_from: int | None = None
    drift: tuple[int, int] | None = None
    seconds: float = 0.0

    def counted(self) -> list[Window]:
        """The windows of the row's part of the stream."""
        part = self.row.part
        if part == "all" or self.drift is None:
            return list(self.windows) if part == "all" else []
        start, width = self.drift
        if part == "after":
            return [w for w in self.windows if w.first >= start]
        if part == "settled":
            return [w for w in self.windows if w.first >= start + width]
        return [w for w in self.windows if w.first >= start and w.last < start + width]

    def before(self) -> list[Window]:
        """The windows wholly before the drift start (none without a drift)."""
        return [] if self.drift is None else [w for w in self.windows if w.last < self.drift[0]]


def realised_accuracy(
    window: Sequence[PredictionEvent], labels: dict[str, object]
) -> tuple[float, int] | None:
    """The share of ``window``'s labelled predictions that were right, and how many had a
    label (None: none had).

    >>> from tests.factories import prediction
    >>> events = [prediction(f"r{i}", value=i % 2) for i in range(4)]
    >>> realised_accuracy(events, {"r0": 0, "r1": 0, "r2": 0})
    (0.6666666666666666, 3)
    """
    right = labelled = 0
    for event in window:
        label = labels.get(event.request_id)
        if label is not None:
            labelled += 1
            right += str(label) == str(event.prediction)
    return (right / labelled, labelled) if labelled else None


def run_stream(row: Row, model: str, seed: int, predictions: int) -> Stream:
    """Simulate one stream, replay it, and read the estimate every ``EVERY`` predictions."""
    began = time.process_time()
    traffic = ModelTraffic(
        model, row.scenario, predictions, seed, labels=LabelPolicy(coverage=row.coverage)
    )
    events: list[PredictionEvent | LabelEvent] = list(simulate([traffic]))
    index: dict[str, int] = {}
    labels: dict[str, object] = {}
    for event in events:
        if isinstance(event, PredictionEvent):
            index[event.request_id] = len(index)
        else:
            labels.setdefault(event.request_id, event.label)
    backtest = replay_of(Settings())
    batches: list[list[Observation]] = []
    backtest.detect.on_applied = lambda _bank, observations: batches.append(list(observations))
    for at in range(0, len(events), BATCH_EVENTS):
        backtest.process_many(events[at : at + BATCH_EVENTS])
    backtest.finish()
    config = backtest.config.for_model(model)
    size = config.recent_window
    bank = DetectorBank(model, config, arrival_order=False)
    stream = Stream(row, model, seed)
    if traffic.truth.drift_start_index is not None:
        stream.drift = (traffic.truth.drift_start_index, traffic.truth.drift_width)
    recent: deque[PredictionEvent] = deque(maxlen=size)
    seen = 0
    for batch in batches:
        chunk: list[Observation] = []
        for observation in batch:
            chunk.append(observation)
            if isinstance(observation, JoinedOutcome):
                continue
            recent.append(observation)
            seen += 1
            if seen % EVERY == 0:  # the batch cut after every EVERY-th prediction
                bank.observe(chunk)
                chunk = []
                summary = bank.summary()
                if summary.estimated_accuracy is not None and stream.estimated_from is None:
                    stream.estimated_from = seen
                if (window := _window(summary, size, recent, index, labels)) is not None:
                    stream.windows.append(window)
        if chunk:
            bank.observe(chunk)
    final, replayed = bank.summary(), backtest.banks[model].summary()
    if (final.predictions, final.estimated_accuracy) != (
        replayed.predictions,
        replayed.estimated_accuracy,
    ):
        raise RuntimeError(f"{row.scenario} {model} seed {seed}: the banks disagree")
    stream.outcomes = final.outcomes
    stream.seconds = time.process_time() - began
    return stream


def _window(
    summary: BankSummary,
    size: int,
    recent: Sequence[PredictionEvent],
    index: dict[str, int],
    labels: dict[str, object],
) -> Window | None:
    """The bank's estimate (its ``summary``) and the realised accuracy of the same predictions,
    once the estimate covers ``size`` of them."""
    signal = summary.signals.get(ESTIMATED_ACCURACY.name)
    if signal is None or signal.n < size or len(recent) < size:
        return None
    realised = realised_accuracy(recent, labels)
    if realised is None:
        return None
    return Window(
        signal.estimate, *realised, index[recent[0].request_id], index[recent[-1].request_id]
    )


def measure(seeds: int, predictions: int, jobs: int) -> list[Stream]:
    """Every row's streams (each model id, each seed) in ``jobs`` processes."""
    plan = [(row, model, seed) for row in ROWS for model in row.models for seed in range(seeds)]
    streams: list[Stream] = []
    with ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(run_stream, *job, predictions): job for job in plan}
        for future in as_completed(futures):
            stream = future.result()
            counted = stream.counted()
            error = f", mean abs. error {_mean_error(counted):.3f}" if counted else ", no window"
            progress(
                f"{stream.row.label(stream.model)} seed {stream.seed}: {len(counted)} windows"
                f"{error} ({stream.seconds:.1f} s CPU)"
            )
            streams.append(stream)
    order = {job: n for n, job in enumerate(plan)}
    return sorted(streams, key=lambda s: order[s.row, s.model, s.seed])


def _mean_error(windows: Sequence[Window]) -> float:
    return statistics.fmean(abs(w.estimate - w.realised) for w in windows)


def _range(values: Sequence[float], digits: str = ".3f") -> str:
    """``0.880`` or ``0.874-0.927``; ``-`` when empty."""
    if not values:
        return "-"
    low, high = f"{min(values):{digits}}", f"{max(values):{digits}}"
    return low if low == high else f"{low}-{high}"


def row_cells(label: str, streams: Sequence[Stream]) -> list[str]:
    """A table row over the seeds of one model: windows, mean estimate, mean realised, mean
    and max absolute error, labels per window, the realised accuracy before the drift, where
    the estimate started, outcomes."""
    windows = [w for s in streams for w in s.counted()]
    started = [s.estimated_from for s in streams if s.estimated_from is not None]
    missing = len(streams) - len(started)
    start = _range([float(p) for p in started], ",.0f")
    if missing:
        start = f"never in {missing} of {len(streams)}" + (f"; {start}" if started else "")
    outcomes = _range([float(s.outcomes) for s in streams], ",.0f")
    earlier = [w.realised for s in streams for w in s.before()]
    before = f"{statistics.fmean(earlier):.3f}" if earlier else "-"
    if not windows:
        return [label, "0", "-", "-", "-", "-", "-", before, start, outcomes]
    errors = [abs(w.estimate - w.realised) for w in windows]
    return [
        label,
        f"{len(windows):,}",
        f"{statistics.fmean(w.estimate for w in windows):.3f}",
        f"{statistics.fmean(w.realised for w in windows):.3f}",
        f"**{statistics.fmean(errors):.3f}**"
        if statistics.fmean(errors) > 0.1
        else f"{statistics.fmean(errors):.3f}",
        f"{max(errors):.3f}",
        f"{statistics.fmean(w.labelled for w in windows):,.0f}",
        before,
        start,
        outcomes,
    ]


def render(
    streams: Sequence[Stream], seeds: int, predictions: int, command: str, load_before: str
) -> str:
    """The markdown section."""
    rows = []
    for row in ROWS:
        for model in row.models:
            mine = [s for s in streams if s.row == row and s.model == model]
            if mine:
                rows.append(row_cells(row.label(model), mine))
    seconds = sum(s.seconds for s in streams)
    seed_text = "seed 0" if seeds == 1 else f"seeds 0-{seeds - 1}"
    lines = [
        SECTION,
        "",
        f"{written(command)} The label-free estimate of accuracy (`detectors.calibration`:"
        " calibrated on a model's first 1,000 joined outcomes with a score, then frozen) against"
        " the realised accuracy of the same predictions. Simulator streams of one model"
        f" (`producers.simulator`), {predictions:,} predictions each, {seed_text}; 80% of"
        " requests labelled unless the row says otherwise, labels late by 30 s on average, some"
        " early, some twice. Each stream goes through the replay core (`replay_of`: the"
        " replay's `Backtest` at the default settings, `process_many` in batches of"
        f" {BATCH_EVENTS:,} events); the estimate is read every {EVERY} predictions (the"
        " observations the replay's bank took, through a second bank of the same"
        f" configuration cut after every {EVERY}th prediction; at the end it agrees with the"
        " replay's bank). A window is a reading once the estimate covers 500 predictions (the"
        " bank's `recent_window`); its realised accuracy is that of the same 500 predictions"
        " that have a label in the recording. `data-drift` shifts the inputs' salaries at the"
        " middle (four model ids: four worlds and trees); `abrupt` changes the concept at the"
        " middle, `gradual` over a fifth of the stream from there, `recurring` for a third of"
        " it from a third in. After the change: windows wholly after the drift start (for"
        " `gradual`, after the change is complete); during the episode: wholly inside it.",
        "",
        *machine(LIBRARIES, load_before),
        "",
        *table(
            [
                "scenario",
                "windows",
                "estimate",
                "realised",
                "mean abs. error",
                "max abs. error",
                "labels per window",
                "realised before the change",
                "estimate from prediction",
                "outcomes per stream",
            ],
            rows,
            numeric=".rrrrrrrrr",
        ),
        "",
        "Estimate and realised are means over the windows; errors are |estimate - realised| per"
        " window (bold above 0.1). Realised before the change: the mean over the windows wholly"
        " before the drift start (those with an estimate). A stream whose outcomes never reach"
        " 1,000 has no estimate."
        f" {len(streams)} streams took {seconds:,.0f} s of CPU in all (simulation included).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and publish the section."""
    options = parser("python -m bench.estimate", __doc__)
    options.add_argument("--seeds", type=int, default=3, help="seeds per scenario and model")
    options.add_argument(
        "--predictions", type=int, default=PREDICTIONS, help="predictions per stream"
    )
    options.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = options.parse_args(argv)
    if args.quick:
        args.seeds, args.predictions = 1, 6000
    if args.seeds < 1 or args.predictions < 1000:
        options.error("--seeds must be at least 1 and --predictions at least 1000")
    command = f"{COMMAND} --seeds {args.seeds} --predictions {args.predictions}"
    load_before = load_average()
    streams = measure(args.seeds, args.predictions, args.jobs)
    publish(render(streams, args.seeds, args.predictions, command, load_before), args.output)


if __name__ == "__main__":
    main()
