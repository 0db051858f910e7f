"""The detection core against a hand-written loop: ``driftstream replay`` and
``bench/baseline_loop.py`` as whole processes over the same recordings, run alternately.

Streams, written to temporary JSON-lines files as ``driftstream simulate --to-file`` writes
them (:class:`producers.event_file.EventFileWriter`):

- narrow: the seeded simulator (``producers.simulator``), four models (``stable``, ``abrupt``,
  ``data-drift``, ``category-shift``) of eight numeric features and a zip code, late, early,
  missing and duplicate labels, ``--events`` events in all;
- wide: ``bench.traffic`` requests of four models with 200 numeric features (and the zip code),
  each label right after its prediction, the error rate jumping between 5% and 45%,
  ``--wide-pairs`` pairs; the replay is told to track every feature (its default tracks the
  first 100 of a model), as the loop does;
- empty: no line at all, the start-up of each command.

Each round runs ``driftstream replay FILE --json`` at the default settings, the same replay
with detectors on the loop's signals only (every numeric feature, the score, the error rate;
the other signals are still computed) and ``python -m bench.baseline_loop FILE``, one after
the other; wall time and the child's user + system CPU time (``os.wait4``) of each, medians
over ``--rounds``. Ratios are loop time / replay time (1.00 or more: the replay is at least as
fast).

In this process, on decoded events (no files): the narrow stream's reading and decoding, the
core alone (:class:`pipeline.backtest.Backtest`, in the replay's batches and one event at a
time), a cProfile of the core by own time per event; and ``--models`` models of 10 features
with ``--model-pairs`` pairs each through one Backtest, pairs per second and memory per model
(tracemalloc; RSS growth alongside); and the state a runtime commits of one model of
``--save-features`` features and of ``--save-models`` models of 10 features at 20,000 pairs/s
(2,000 pairs between commits, 0.1 s apart), and of ``--quiet-models`` models at 1,000 pairs/s
(one request a model every 10 s at 10,000), over ``--save-commits`` commits: the time taking
the pieces that changed, their bytes, the largest.
Results go to the "## Detection core" section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.core [--events 200000] [--wide-pairs 20000] [--rounds 3]
        [--models 1000] [--model-pairs 100] [--save-features 1000] [--save-models 1000]
        [--quiet-models 10000] [--save-commits 10] [--quick] [--output FILE]
"""

from __future__ import annotations

import cProfile
import dataclasses
import itertools
import json
import math
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.baseline_loop import LABEL, PREDICTION
from bench.harness import rss_bytes
from bench.results import load_average, machine, parser, progress, publish, table, written
from bench.traffic import Shape, generate
from detectors.config import DetectorConfig
from pipeline.backtest import Backtest
from pipeline.detect import DEFAULT_LATENESS_SECONDS
from producers.event_file import EventFileWriter, read_event_file
from producers.scenarios import Scenario
from producers.simulator import LabelPolicy, ModelTraffic, simulate
from schemas.codec import decode
from schemas.events import LabelEvent, PredictionEvent
from stream_app.cli.replay import BATCH_EVENTS
from stream_app.gc_tuning import collect_less_often
from stream_app.settings import DetectorSettings, JoinSettings, WorkerSettings

SECTION = "## Detection core"
COMMAND = ".venv/bin/python -m bench.core"
LIBRARIES = ("river", "pydantic", "pydantic-core")
NARROW_SCENARIOS = (Scenario.STABLE, Scenario.ABRUPT, Scenario.DATA_DRIFT, Scenario.CATEGORY_SHIFT)
SEED = 7
WIDE = Shape(models=4, numeric_features=200, error_rates=(0.05, 0.45), segment=2_500, seed=SEED)
MANY = Shape(numeric_features=9, seed=SEED, segment=10**9)
"""10 features: nine numbers and the zip code, a steady 5% error rate (``models`` and the
spacing set by ``--models``)."""
WIDEST = Shape(models=1, error_rates=(0.05, 0.45), segment=2_500, seed=SEED, spacing_us=1_000)
"""The model whose state saving is measured (``numeric_features`` set by ``--save-features``):
its requests 1 ms apart in event time, so that a commit's 2,000 pairs move event time past the
detection's lateness (2 s) and reach the detectors by the next commit."""
OFFERED_PAIRS = 20_000
COMMIT_SECONDS = 0.1
"""Issue 26's target: saving what changed every 0.1 s at 20,000 pairs/s under 5% of a core."""
QUIET_PAIRS = 1_000
"""The pairs/s of the many quiet models whose commits are measured (``--quiet-models``: at
10,000 models, one request of each every 10 s)."""
MODEL_RATE = 10.0
"""Requests per second of event time of each of the many models (the simulator's default)."""
LOOP_SIGNALS_ONLY = json.dumps(
    {
        name: []
        for name in (
            "missing:*",
            "invalid:*",
            "category:*",
            "predicted_class:*",
            "estimated_accuracy",
            "volume",
            "label_coverage",
            "label_delay",
        )
    }
)
"""``DRIFTSTREAM_DETECTORS__SIGNAL_DETECTORS``: no detector on the signals the loop lacks."""
PROFILE_TOP = 12
ROOT = Path(__file__).resolve().parent.parent
"""The checkout, where ``python -m bench.baseline_loop`` finds its package."""


@dataclass(frozen=True, eq=False)
class Command:
    """One timed command: its label, how it reports its counts, environment overrides."""

    label: str
    replay: bool
    env: Mapping[str, str]

    def argv(self, file: Path) -> list[str]:
        if self.replay:
            return [
                str(Path(sys.executable).with_name("driftstream")),
                "replay",
                str(file),
                "--json",
            ]
        return [sys.executable, "-m", "bench.baseline_loop", str(file)]


REPLAY = Command("`driftstream replay --json`", replay=True, env={})
REPLAY_LOOP_SIGNALS = Command(
    "`driftstream replay --json`, detectors on the loop's signals only",
    replay=True,
    env={"DRIFTSTREAM_DETECTORS__SIGNAL_DETECTORS": LOOP_SIGNALS_ONLY},
)
LOOP = Command("hand-written loop (`bench.baseline_loop`)", replay=False, env={})
COMMANDS = (REPLAY, REPLAY_LOOP_SIGNALS, LOOP)


@dataclass(frozen=True)
class Stream:
    """A recording on disk, what it holds, and settings its replays need."""

    name: str
    path: Path
    events: int
    env: Mapping[str, str]


@dataclass(frozen=True)
class Counts:
    """What a command reports: events read, pairs joined, alerts or detections."""

    events: int
    pairs: int
    detections: int


@dataclass(frozen=True)
class Timing:
    """One run of a command: wall seconds, the child's CPU seconds, its standard output."""

    wall: float
    cpu: float
    output: str


def timed_run(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Timing:
    """Run ``argv`` (in ``cwd``) to its end; wall time, and user + system CPU time of the child
    (its resource usage from ``os.wait4``). A non-zero exit raises with the end of its stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, env=dict(env), cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)} exited with {child.returncode}:\n{tail}")
        out.seek(0)
        return Timing(wall, usage.ru_utime + usage.ru_stime, out.read().decode())


def counts_of(command: Command, output: str) -> Counts:
    """The counts in a command's output: the replay's JSON document (events, joined pairs
    summed over models, alerts) or the loop's three lines.

    >>> counts_of(LOOP, "events 5\\njoined pairs 2\\ndetections 1\\n")
    Counts(events=5, pairs=2, detections=1)
    >>> counts_of(REPLAY, '{"events": 5, "alerts": [{}], "models": {"m": {"joined": 2}}}')
    Counts(events=5, pairs=2, detections=1)
    """
    if command.replay:
        document = json.loads(output)
        pairs = sum(int(model["joined"]) for model in document["models"].values())
        return Counts(int(document["events"]), pairs, len(document["alerts"]))
    found = dict(re.findall(r"^(events|joined pairs|detections) (\d+)$", output, re.MULTILINE))
    return Counts(int(found["events"]), int(found["joined pairs"]), int(found["detections"]))


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without any ``DRIFTSTREAM_*`` setting (the replay runs at the
    defaults), plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTSTREAM_")}
    return base | dict(extra)


def write_narrow(path: Path, events: int) -> int:
    """The simulator's traffic of the narrow models, about ``events`` events; the count."""
    per_model = len(NARROW_SCENARIOS) * LabelPolicy().events_per_prediction
    predictions = max(1, round(events / per_model))
    models = [
        ModelTraffic(f"m{i}", scenario, n_predictions=predictions, seed=SEED)
        for i, scenario in enumerate(NARROW_SCENARIOS)
    ]
    writer = EventFileWriter(path)
    for event in simulate(models):
        writer.send(event)
    return writer.close().sent


def write_wide(path: Path, pairs: int) -> int:
    """``pairs`` wide requests, each prediction followed by its label; the event count."""
    writer = EventFileWriter(path)
    for request in generate(WIDE, pairs):
        writer.send(decode(PredictionEvent, request.prediction))
        writer.send(decode(LabelEvent, request.label))
    return writer.close().sent


def wide_models_env() -> dict[str, str]:
    """``DRIFTSTREAM_DETECTORS__MODELS`` tracking every feature of the wide models."""
    limit = {"max_feature_signals": WIDE.numeric_features + 1}
    models = {f"m{i}": limit for i in range(WIDE.models)}
    return {"DRIFTSTREAM_DETECTORS__MODELS": json.dumps(models)}


@dataclass(frozen=True)
class Measured:
    """Every run of one command on one stream, and its counts (the same in every run)."""

    runs: list[Timing]
    counts: Counts

    @property
    def wall(self) -> float:
        return statistics.median(t.wall for t in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(t.cpu for t in self.runs)


def measure_stream(
    stream: Stream, commands: Sequence[Command], rounds: int
) -> dict[Command, Measured]:
    """``rounds`` rounds, each running every command once, in turn, on the stream."""
    runs: dict[Command, list[Timing]] = {command: [] for command in commands}
    counts: dict[Command, Counts] = {}
    for number in range(1, rounds + 1):
        for command in commands:
            env = _child_env({**stream.env, **command.env})
            timing = timed_run(command.argv(stream.path), env, cwd=ROOT)
            found = counts_of(command, timing.output)
            if counts.setdefault(command, found) != found:
                raise RuntimeError(f"{command.label}: {found} differs from {counts[command]}")
            if found.events != stream.events:
                raise RuntimeError(f"{command.label} read {found.events:,} of {stream.events:,}")
            runs[command].append(timing)
            progress(
                f"{stream.name}: {command.label}, run {number}/{rounds}: {timing.wall:.2f} s wall,"
                f" {timing.cpu:.2f} s CPU"
            )
    return {command: Measured(runs[command], counts[command]) for command in commands}


def _backtest(config: DetectorConfig | None = None) -> Backtest:
    """A Backtest as ``driftstream replay`` makes one at the default settings."""
    join = JoinSettings()
    return Backtest(
        ttl_seconds=join.ttl_seconds,
        max_pending=join.max_pending,
        config=config or DetectorConfig.from_settings(DetectorSettings()),
        lateness_seconds=WorkerSettings().lateness_seconds,
    )


def _feed(backtest: Backtest, events: Sequence[PredictionEvent | LabelEvent]) -> int:
    """Every event through the core in the replay's batches (``process_many`` of
    ``BATCH_EVENTS``), then what it holds; the alerts."""
    alerts = 0
    for start in range(0, len(events), BATCH_EVENTS):
        alerts += len(backtest.process_many(events[start : start + BATCH_EVENTS]))
    return alerts + len(backtest.finish())


def _feed_one_by_one(backtest: Backtest, events: Iterable[PredictionEvent | LabelEvent]) -> int:
    """Every event through the core with ``process``, one at a time; the alerts."""
    alerts = sum(len(backtest.process(event)) for event in events)
    return alerts + len(backtest.finish())


def _cpu() -> float:
    return time.process_time()


@dataclass(frozen=True)
class Split:
    """Seconds of CPU in this process, per event of the narrow stream: reading and decoding
    the file the replay's way and the loop's way, the core on decoded events in the replay's
    batches and one at a time."""

    replay_decode: float
    loop_decode: float
    core: float
    core_one_by_one: float


def loop_decode(path: Path) -> int:
    """Decode the file as ``bench.baseline_loop`` does (prefix, ``model_validate_json``)."""
    count = 0
    with path.open("rb") as lines:
        for line in lines:
            if line.startswith(PREDICTION):
                PredictionEvent.model_validate_json(line.rstrip()[len(PREDICTION) : -1])
            else:
                LabelEvent.model_validate_json(line.rstrip()[len(LABEL) : -1])
            count += 1
    return count


def split_narrow(path: Path) -> tuple[Split, list[PredictionEvent | LabelEvent]]:
    """Time decoding both ways and the core alone both ways; the decoded events too."""
    start = _cpu()
    for _event in read_event_file(path):  # decoded and dropped, as the loop's
        pass
    replay_decode = _cpu() - start
    start = _cpu()
    loop_decode(path)
    loop = _cpu() - start
    events = list(read_event_file(path))
    start = _cpu()
    _feed(_backtest(), events)
    core = _cpu() - start
    start = _cpu()
    _feed_one_by_one(_backtest(), events)
    one_by_one = _cpu() - start
    n = len(events)
    return Split(replay_decode / n, loop / n, core / n, one_by_one / n), events


@dataclass(frozen=True)
class ProfileRow:
    """A function's calls and own CPU time per event."""

    function: str
    calls: float
    own: float
    share: float


def _where(file: str, line: int, name: str) -> str:
    """``name (path:line)`` with the path from the repository or site-packages."""
    if file == "~":
        return name
    marker = "site-packages/"
    if marker in file:
        file = file.split(marker, 1)[1]
    else:
        file = os.path.relpath(file) if file.startswith(os.getcwd()) else Path(file).name
    return f"{name} ({file}:{line})"


def profile_rows(
    raw: Mapping[tuple[str, int, str], tuple[Any, ...]], events: int, top: int
) -> tuple[list[ProfileRow], float]:
    """The ``top`` functions of cProfile's raw stats by own time, per event; and the total
    own time per event.

    >>> rows, total = profile_rows(
    ...     {("~", 0, "<len>"): (4, 4, 0.001, 0.001, {}),
    ...      ("/x/a.py", 3, "f"): (2, 2, 0.003, 0.1, {})},
    ...     events=2, top=1)
    >>> rows, round(total * 1e6)
    ([ProfileRow(function='f (a.py:3)', calls=1.0, own=0.0015, share=0.75)], 2000)
    """
    total = sum(entry[2] for entry in raw.values())
    ranked = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    rows = [
        ProfileRow(_where(*key), entry[1] / events, entry[2] / events, entry[2] / total)
        for key, entry in ranked
    ]
    return rows, total / events


def profile_core(events: Sequence[PredictionEvent | LabelEvent]) -> tuple[list[ProfileRow], float]:
    """cProfile of the core over ``events``: the top functions by own time, the total."""
    backtest = _backtest()
    profiler = cProfile.Profile()
    profiler.enable()
    _feed(backtest, events)
    profiler.disable()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = vars(pstats.Stats(profiler))["stats"]
    return profile_rows(raw, len(events), PROFILE_TOP)


@dataclass(frozen=True)
class ManyModels:
    """Many models in one Backtest: pairs/s (wall and CPU), bytes per model, alerts."""

    models: int
    pairs: int
    seconds: float
    cpu: float
    traced_per_model: float
    join_per_model: float
    """Of ``traced_per_model``, what the join keeps of the requests (pending sides and done
    markers until their TTL): it grows with the requests, not the models."""
    rss_per_model: float
    alerts: int


def many_models(models: int, pairs_each: int) -> ManyModels:
    """``models`` models of 10 features, ``pairs_each`` pairs each (a prediction, then its
    label), decoded here, then through one Backtest: timed, and again under tracemalloc."""
    spacing = max(1, round(1e6 / (MODEL_RATE * models)))
    shape = dataclasses.replace(MANY, models=models, spacing_us=spacing)
    pairs = models * pairs_each
    events: list[PredictionEvent | LabelEvent] = []
    for request in generate(shape, pairs):
        events += [decode(PredictionEvent, request.prediction), decode(LabelEvent, request.label)]
    progress(f"{models:,} models: {len(events):,} events decoded; through the core")
    rss_before = rss_bytes(os.getpid())
    backtest = _backtest()
    start, cpu_start = time.perf_counter(), _cpu()
    alerts = _feed(backtest, events)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu_start
    rss = rss_bytes(os.getpid()) - rss_before
    del backtest
    progress(f"{models:,} models: {pairs / seconds:,.0f} pairs/s; again under tracemalloc")
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        backtest = _backtest()
        _feed(backtest, events)
        growth = tracemalloc.take_snapshot().compare_to(before, "filename")
    finally:
        tracemalloc.stop()
    traced = sum(stat.size_diff for stat in growth)
    join = sum(stat.size_diff for stat in growth if _in_join(stat.traceback[0].filename))
    return ManyModels(
        models, pairs, seconds, cpu, traced / models, join / models, rss / models, alerts
    )


def _in_join(filename: str) -> bool:
    """Whether memory allocated in ``filename`` is the join's (its buffers and their index)."""
    return Path(filename).parts[-2:] in (("detectors", "join_buffer.py"), ("pipeline", "join.py"))


@dataclass(frozen=True)
class StateSaving:
    """What a runtime's commits of some models' state cost: per commit, the seconds taking
    the pieces that changed (:meth:`~pipeline.detect.DetectProcessor.take_state_changes`),
    their bytes and count, and the core's own seconds for the pairs in between."""

    what: str
    """The models, for the table (``"one model of 1,000 features"``)."""
    pairs_per_second: float
    pairs_per_commit: int
    take: list[float]
    written: list[int]
    pieces: list[int]
    largest: int
    core: list[float]


def state_saving(features: int, commits: int, warm_commits: int = 2) -> StateSaving:
    """One model of ``features`` features (numbers and a zip code, all tracked) at
    ``OFFERED_PAIRS`` pairs/s committed every ``COMMIT_SECONDS``: the pairs of a commit through
    the core, then what the commit writes taken; the first ``warm_commits`` (a young model) not
    counted."""
    shape = dataclasses.replace(WIDEST, numeric_features=features - 1)  # and the zip code
    limit = {"max_feature_signals": features + 1}
    config = DetectorConfig.from_settings(DetectorSettings(models={"m0": limit}))
    what = f"one model of {features:,} features"
    return _saving(what, _backtest(config), shape, OFFERED_PAIRS, commits, warm_commits)


def many_saving(models: int, commits: int, pairs_per_second: float = OFFERED_PAIRS) -> StateSaving:
    """``models`` models of 10 features, ``pairs_per_second`` in all (each model at the same
    rate, in event time as in commits), committed every ``COMMIT_SECONDS``; not counted: the
    commits until every model has sent and its first observations passed the detection's hold
    (2 s of event time, or the model's own next request when that comes later: a quiet
    model's, 10 s later), and the one after them (the last models' signals made)."""
    per_commit = round(pairs_per_second * COMMIT_SECONDS)
    spacing = max(1, round(1e6 / pairs_per_second))
    shape = dataclasses.replace(MANY, models=models, spacing_us=spacing)
    # a model's observations pass the lateness when its own next requests come (its hold)
    held = math.ceil(max(DEFAULT_LATENESS_SECONDS * 1e6, models * spacing) / (spacing * per_commit))
    warm = math.ceil(models / per_commit) + held + 1
    what = f"{models:,} models of 10 features"
    return _saving(what, _backtest(), shape, pairs_per_second, commits, warm)


def _saving(
    what: str,
    backtest: Backtest,
    shape: Shape,
    pairs_per_second: float,
    commits: int,
    warm_commits: int,
) -> StateSaving:
    """The commits of ``shape``'s requests through ``backtest``, a commit's worth of
    ``pairs_per_second`` each, the first ``warm_commits`` not counted."""
    per_commit = round(pairs_per_second * COMMIT_SECONDS)
    requests = generate(shape, per_commit * (warm_commits + commits))
    saving = StateSaving(what, pairs_per_second, per_commit, [], [], [], 0, [])
    for number in range(warm_commits + commits):
        events: list[PredictionEvent | LabelEvent] = []
        for request in itertools.islice(requests, per_commit):
            events.append(decode(PredictionEvent, request.prediction))
            events.append(decode(LabelEvent, request.label))
        start = time.perf_counter()
        backtest.process_many(events)
        taken = time.perf_counter()
        changes = backtest.detect.take_state_changes()
        done = time.perf_counter()
        sizes = [len(change.value or b"") for change in changes]
        if number >= warm_commits:
            saving.core.append(taken - start)
            saving.take.append(done - taken)
            saving.written.append(sum(sizes))
            saving.pieces.append(len(sizes))
        saving = dataclasses.replace(saving, largest=max(saving.largest, *sizes, 0))
        progress(
            f"{what}, commit {number + 1}/{warm_commits + commits}: core"
            f" {taken - start:.2f} s, state {done - taken:.4f} s, {len(sizes)} pieces,"
            f" {sum(sizes):,} bytes"
        )
    return saving


def saving_lines(savings: Sequence[StateSaving]) -> list[str]:
    """The state-saving paragraph, its table and the verdict on issue 26's targets."""
    limit = 64 * 1024
    verdicts = []
    for saving in savings:
        share = statistics.median(saving.take) / COMMIT_SECONDS
        core = statistics.median(saving.core)
        verdicts.append(
            f"{saving.what}: {share:.1%} of a core, {'met' if share < 0.05 else 'not met'};"
            f" largest piece {saving.largest:,} bytes,"
            f" {'met' if saving.largest <= limit else 'not met'}; the saving is"
            f" {statistics.median(saving.take) / core:.1%} of the core's own time for the same"
            f" pairs, and the core needs {core / COMMIT_SECONDS:,.1f} cores for"
            f" {saving.pairs_per_second:,.0f} pairs/s"
        )
    return [
        f"The state a runtime commits every {COMMIT_SECONDS} s (every feature tracked, numbers"
        " and a zip code): each commit's pairs through the core, then the pieces that changed"
        " taken as a runtime writes them (`DetectProcessor.take_state_changes`, encoded bytes);"
        " each of many models at the same rate; not counted: the wide model's first two commits"
        " (a young model), and for many models the commits until every model has sent and its"
        " first observations passed the detection's hold (its lateness, 2 s of event time, or"
        " the model's own next request when that comes later), and the one after (the last"
        f" signals made); medians (min-max) over {len(savings[0].take)} commits:",
        "",
        *table(
            [
                "models",
                "pairs/s",
                "ms per commit",
                "share of a core",
                "core's ms per commit",
                "pieces",
                "bytes",
                "largest piece",
            ],
            [
                (
                    saving.what,
                    f"{saving.pairs_per_second:,.0f}",
                    _spread([seconds * 1e3 for seconds in saving.take]),
                    f"{statistics.median(saving.take) / COMMIT_SECONDS:.1%}",
                    f"{statistics.median(saving.core) * 1e3:,.0f}",
                    f"{statistics.median(saving.pieces):,.0f}",
                    f"{statistics.median(saving.written):,.0f}",
                    f"{saving.largest:,}",
                )
                for saving in savings
            ],
            numeric=".rrrrrrr",
        ),
        "",
        f"Targets (issue 26): saving what changed every {COMMIT_SECONDS} s under 5% of a core,"
        " and no piece over 64 KiB. " + "; ".join(verdicts) + ".",
    ]


def _ratio(loop: float, replay: float) -> str:
    return f"{loop / replay:.2f}"


def _spread(values: Sequence[float]) -> str:
    median = statistics.median(values)
    return (
        f"{median:.2f} ({min(values):.2f}-{max(values):.2f})"
        if len(values) > 1
        else f"{median:.2f}"
    )


def render(
    streams: Sequence[Stream],
    results: Mapping[str, Mapping[Command, Measured]],
    split: Split,
    profile: tuple[list[ProfileRow], float],
    many: ManyModels,
    savings: Sequence[StateSaving],
    rounds: int,
    command: str,
    load: str,
) -> str:
    """The section: how, machine, one row per stream and command with the ratios, where the
    replay's time goes, many models, the profile."""
    rows = []
    for stream in streams:
        measured = results[stream.name]
        loop = measured[LOOP]
        for cmd, m in measured.items():
            per_event = f"{m.cpu / stream.events * 1e6:,.0f}" if stream.events else "-"
            rows.append(
                (
                    stream.name,
                    cmd.label,
                    f"{m.counts.events:,}",
                    f"{m.counts.pairs:,}",
                    f"{m.counts.detections:,}",
                    _spread([t.wall for t in m.runs]),
                    _spread([t.cpu for t in m.runs]),
                    per_event,
                    "" if cmd is LOOP else _ratio(loop.wall, m.wall),
                    "" if cmd is LOOP else _ratio(loop.cpu, m.cpu),
                )
            )
    verdicts = [
        f"{stream.name} {_ratio(loop.wall, replay.wall)} wall, {_ratio(loop.cpu, replay.cpu)} CPU"
        for stream in streams
        for loop, replay in [(results[stream.name][LOOP], results[stream.name][REPLAY])]
    ]
    narrow = next(s for s in streams if s.name == "narrow")
    empty = next((s for s in streams if s.events == 0), None)
    replay_cpu = results[narrow.name][REPLAY].cpu / narrow.events
    startup = ""
    if empty is not None:
        startup = (
            f" Start-up alone (the empty file): {results[empty.name][REPLAY].cpu:.2f} s CPU for"
            f" the replay, {results[empty.name][LOOP].cpu:.2f} s for the loop."
        )
    top, profiled = profile
    lines = [
        SECTION,
        "",
        f"{written(command)} Whole processes over the same JSON-lines recordings (the"
        " `driftstream simulate --to-file` format, written to a temporary folder): `driftstream"
        " replay FILE --json` at the default settings (no `DRIFTSTREAM_*` variable), the same"
        " replay with detectors only on the signals the loop watches (numeric features, score,"
        " error rate; the other signals are still computed), and the hand-written loop"
        " `python -m bench.baseline_loop FILE` (pydantic `model_validate_json` per line, a dict"
        " join by request id, river `ADWIN(delta=1e-4)` per numeric feature and on the score,"
        " `ADWIN()` and `PageHinkley()` on the 0/1 error; no TTL, event-time order,"
        f" deduplication or data quality). {rounds} round(s), each running the three one after"
        " the other; wall and CPU (user + system of the child, from `os.wait4`) are medians"
        " (min-max). Streams: narrow, the seeded simulator's four models"
        f" ({', '.join(s.value for s in NARROW_SCENARIOS)}; eight numbers and a zip code; 80%"
        " labelled, labels late by 30 s on average, some early, some twice); wide,"
        f" `bench.traffic` requests of {WIDE.models} models with {WIDE.numeric_features} numeric"
        " features and a zip code, each label right after its prediction, the error rate"
        f" jumping between 5% and 45% every {WIDE.segment:,} outcomes of a model (the replay is"
        f" set to track every feature, `max_feature_signals` {WIDE.numeric_features + 1} for"
        " these models; its default is 100); empty, no event (start-up only)."
        " The last column is the replay's alerts (one per detector and episode, after the"
        " cooldown) or the loop's detections (every `drift_detected`).",
        "",
        *machine(LIBRARIES, load),
        "",
        *table(
            [
                "stream",
                "command",
                "events",
                "joined pairs",
                "alerts / detections",
                "wall s",
                "CPU s",
                "CPU µs/event",
                "loop/replay wall",
                "loop/replay CPU",
            ],
            rows,
            numeric="..rrrrrrrr",
        ),
        "",
        "Loop time / replay time at the defaults (1.00 or more: the replay is at least as fast):"
        f" {'; '.join(verdicts)}.",
        "",
        "Where the replay's time goes (narrow stream, CPU per event, the parts measured in this"
        f" process): the replay process used {replay_cpu * 1e6:,.1f} µs, start-up included;"
        " reading and decoding the file as the replay does"
        f" (`producers.event_file.scan_event_lines`) {split.replay_decode * 1e6:,.1f} µs, as the"
        f" loop does (prefix, `model_validate_json`) {split.loop_decode * 1e6:,.1f} µs; the core"
        " alone on decoded events, in the replay's batches of"
        f" {BATCH_EVENTS:,} (`Backtest.process_many`) {split.core * 1e6:,.1f} µs, one event at"
        f" a time (`Backtest.process`) {split.core_one_by_one * 1e6:,.1f} µs." + startup,
        "",
        f"{many.models:,} models of 10 features in one process (in-process, not a command:"
        f" {many.pairs // many.models:,} pairs per model made by `bench.traffic` and decoded"
        " first, each prediction followed by its label, each model at"
        f" {MODEL_RATE:g} requests per second of event time, through one `Backtest` at the"
        f" replay's defaults in batches of {BATCH_EVENTS:,} events; memory is what the core"
        " holds at the end (the banks, and what the join keeps of the requests), tracemalloc on"
        " a second pass, and the RSS growth of the timed pass, per model; the join's part,"
        " allocated in `detectors/join_buffer.py` and `pipeline/join.py`, is the requests'"
        " pending sides and done markers kept until their TTL, and grows with the requests, not"
        " with the models):",
        "",
        *table(
            [
                "models",
                "pairs",
                "pairs/s",
                "CPU µs/pair",
                "KiB per model (tracemalloc)",
                "of which the join's",
                "KiB per model (RSS growth)",
                "alerts",
            ],
            [
                (
                    f"{many.models:,}",
                    f"{many.pairs:,}",
                    f"{many.pairs / many.seconds:,.0f}",
                    f"{many.cpu / many.pairs * 1e6:,.0f}",
                    f"{many.traced_per_model / 1024:,.1f}",
                    f"{many.join_per_model / 1024:,.1f}",
                    f"{many.rss_per_model / 1024:,.1f}",
                    many.alerts,
                )
            ],
            numeric="rrrrrrrr",
        ),
        "",
        *saving_lines(savings),
        "",
        f"CPU profile of the core (cProfile in this process, `Backtest.process_many` in batches"
        f" of {BATCH_EVENTS:,} over the {narrow.events:,} decoded events of the narrow stream,"
        f" top {len(top)} functions by own"
        f" time; the profiler's own cost inflates the total to {profiled * 1e6:,.1f} µs/event"
        f" against {split.core * 1e6:,.1f} without it):",
        "",
        *table(
            ["function (file:line)", "calls/event", "own µs/event", "share of own time"],
            [
                (row.function, f"{row.calls:,.3g}", f"{row.own * 1e6:,.2f}", f"{row.share:.1%}")
                for row in top
            ],
            numeric=".rrr",
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Write the streams, measure, publish the section."""
    options = parser("python -m bench.core", __doc__)
    options.add_argument("--events", type=int, default=200_000, help="narrow stream's events")
    options.add_argument("--wide-pairs", type=int, default=20_000, help="wide stream's pairs")
    options.add_argument("--rounds", type=int, default=3, help="runs of each command per stream")
    options.add_argument("--models", type=int, default=1_000, help="models in one process")
    options.add_argument("--model-pairs", type=int, default=100, help="pairs per model")
    options.add_argument(
        "--save-features", type=int, default=1_000, help="features of the saved model"
    )
    options.add_argument("--save-models", type=int, default=1_000, help="many models saved")
    options.add_argument(
        "--quiet-models", type=int, default=10_000, help=f"models at {QUIET_PAIRS:,} pairs/s"
    )
    options.add_argument("--save-commits", type=int, default=10, help="commits measured")
    args = options.parse_args(argv)
    if args.quick:
        args.events, args.wide_pairs, args.rounds = 10_000, 1_000, 1
        args.models, args.model_pairs = 100, 100
        args.save_features, args.save_models, args.save_commits = 100, 100, 2
        args.quiet_models = 1_000
    command = (
        f"{COMMAND} --events {args.events} --wide-pairs {args.wide_pairs} --rounds {args.rounds}"
        f" --models {args.models} --model-pairs {args.model_pairs}"
        f" --save-features {args.save_features} --save-models {args.save_models}"
        f" --quiet-models {args.quiet_models} --save-commits {args.save_commits}"
    )
    load_before = load_average()
    collect_less_often()  # what this process measures in itself runs as the product's would
    with tempfile.TemporaryDirectory(prefix="bench-core-") as scratch:
        folder = Path(scratch)
        progress(f"writing the narrow stream (about {args.events:,} events)")
        path = folder / "narrow.jsonl"
        narrow = Stream("narrow", path, write_narrow(path, args.events), {})
        progress(f"writing the wide stream ({args.wide_pairs:,} pairs)")
        path = folder / "wide.jsonl"
        wide = Stream("wide", path, write_wide(path, args.wide_pairs), wide_models_env())
        path = folder / "empty.jsonl"
        path.touch()
        empty = Stream("empty", path, 0, {})
        streams = [narrow, wide, empty]
        results = {s.name: measure_stream(s, COMMANDS, args.rounds) for s in streams}
        progress("narrow stream in this process: decoding, the core alone, the profile")
        split, events = split_narrow(narrow.path)
        profile = profile_core(events)
        del events
    many = many_models(args.models, args.model_pairs)
    savings = [
        state_saving(args.save_features, args.save_commits),
        many_saving(args.save_models, args.save_commits),
        many_saving(args.quiet_models, args.save_commits, QUIET_PAIRS),
    ]
    publish(
        render(streams, results, split, profile, many, savings, args.rounds, command, load_before),
        args.output,
    )


if __name__ == "__main__":
    main()
