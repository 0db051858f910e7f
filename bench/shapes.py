"""The default worker on traffic of any shape, produced by an outside client: wide models, many
models, and the restore after a SIGKILL.

For each shape, fresh topics (4 partitions) are loaded by ``kcat`` (librdkafka's
``murmur2_random`` partitioner, as Kafka's Java clients partition by key) from a file of
``request id<TAB>event`` lines, predictions then labels, each label right after its
prediction in event time:

- ``--wide-pairs`` pairs of one model of 300 features (299 numbers and a zip code), and of one
  model of 1,000 features; every feature tracked (``max_feature_signals`` above the width: the
  default tracks the first 100), so the state is the largest such a model can have;
- ``--models`` models of 10 features (nine numbers and the zip code), ``--model-pairs`` pairs
  each.

Then ``driftstream worker`` (the Kafka-native runtime, default settings otherwise) runs until
Redis shows every outcome taken by its detection stage, timed as ``bench.throughput`` times it
(from its first event consumed, by Kafka timestamps, to the last outcome); the counts must be
exact (predictions, labels, joined pairs). With many models the worker is then started again
on the same state, killed with SIGKILL once ready, and started once more: its log gives the
seconds the restore took and the changelog records it read, and the wall time from its start to
"worker ready" (after a SIGKILL that includes the group waiting out the killed member's
session, 30 s by default). Results go to the "## Shapes" section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.shapes [--wide-pairs 10000] [--models 1000] [--model-pairs 50]
        [--quick] [--output FILE]
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.harness import Bench, bench_topics, kcat_preload, shared_services
from bench.results import STACK, load_average, machine, parser, progress, publish, table, written
from bench.throughput import WorkerResult, measure_worker
from bench.traffic import Shape, generate
from detectors.config import BankConfig
from stream_app.local.services.process import wait_until

SECTION = "## Shapes"
COMMAND = ".venv/bin/python -m bench.shapes"
SEED = 11
WORKER = "kafka"
"""The worker's name in the bench (its app id and Redis keys)."""
RESTORED = re.compile(
    r"restored (\d+) input and (\d+) observations partitions from (\d+) changelog records"
    r" in ([\d.]+)s"
)


@dataclass(frozen=True)
class Traffic:
    """One shape of traffic: what it is called, the generator's shape, its pairs."""

    name: str
    shape: Shape
    pairs: int

    @property
    def env(self) -> dict[str, str]:
        """Every feature tracked: each model's limit above its width, where the default limit
        is below it (thousands of models' settings do not fit one environment variable)."""
        width = self.shape.numeric_features + 2
        if width <= BankConfig().max_feature_signals:
            return {}
        limit = {"max_feature_signals": width}
        models = {f"m{i}": limit for i in range(self.shape.models)}
        return {"DRIFTSTREAM_DETECTORS__MODELS": json.dumps(models)}


@dataclass(frozen=True)
class Restore:
    """A restart after a SIGKILL: the restore's own seconds and records, start to ready."""

    seconds: float
    records: int
    ready_seconds: float


@dataclass(frozen=True)
class Outcome:
    """One shape's run: the worker's timing and its counts (exact, or the run failed)."""

    traffic: Traffic
    worker: WorkerResult
    restore: Restore | None


def exact_counts(bench: Bench, traffic: Traffic) -> None:
    """Every prediction and label read, every pair joined, once."""
    for counter in ("predictions", "labels", "joined"):
        found = bench.counter(counter, WORKER)
        if found != traffic.pairs:
            raise RuntimeError(f"{traffic.name}: {counter} {found:,}, not {traffic.pairs:,}")


def restore_after_kill(bench: Bench, traffic: Traffic) -> Restore:
    """Start the worker on its committed state, SIGKILL it once ready, start it again: how
    long its restore took (its log) and how long until it was ready."""
    worker = bench.worker(WORKER, "kafka", **traffic.env)
    worker.loglevel, worker.log_file = "info", bench.workdir / "killed.log"  # "worker ready"
    with worker:
        if not wait_until(lambda: "worker ready" in worker.log_tail(400), 300, 0.2):
            raise RuntimeError(f"the worker never got ready:\n{worker.log_tail()}")
        worker.kill()
    log = bench.workdir / "restarted.log"
    restarted = bench.worker(WORKER, "kafka", **traffic.env)
    restarted.loglevel, restarted.log_file = "info", log
    started = time.monotonic()
    with restarted:
        if not wait_until(lambda: "worker ready" in restarted.log_tail(400), 300, 0.2):
            raise RuntimeError(f"the restarted worker never got ready:\n{restarted.log_tail()}")
        ready = time.monotonic() - started
    found = RESTORED.findall(log.read_text())
    if not found:
        raise RuntimeError(f"no restore line in the restarted worker's log:\n{log.read_text()}")
    _joins, _observations, records, seconds = found[-1]
    return Restore(float(seconds), int(records), ready)


def run_shape(traffic: Traffic, restore: bool) -> Outcome:
    """Fresh topics loaded by kcat, the worker over them, then (``restore``) the restart."""
    name = "shapes-" + re.sub(r"[^a-z0-9]+", "-", traffic.name)
    with bench_topics(shared_services(), name) as bench:
        kcat_preload(bench, generate(traffic.shape, traffic.pairs), traffic.name)
        progress(f"{traffic.name}: worker")
        result = measure_worker(bench, traffic.pairs, WORKER, profile=None, env=traffic.env)
        exact_counts(bench, traffic)
        progress(f"{traffic.name}: {traffic.pairs / result.seconds:,.0f} pairs/s, counts exact")
        after = restore_after_kill(bench, traffic) if restore else None
    return Outcome(traffic, result, after)


def render(outcomes: Sequence[Outcome], command: str, load_before: str) -> str:
    """The section: how, machine, a row per shape, the restore."""
    rows = [
        (
            o.traffic.name,
            f"{o.traffic.shape.models:,}",
            f"{o.traffic.shape.numeric_features + 1:,}",
            f"{o.traffic.pairs:,}",
            f"{o.traffic.pairs / o.worker.seconds:,.0f}",
            f"{o.worker.cpu_per_pair * 1e6:,.0f}",
            "yes",
            o.worker.alerts,
        )
        for o in outcomes
    ]
    restores = [(o.traffic.name, o.restore) for o in outcomes if o.restore is not None]
    lines = [
        SECTION,
        "",
        written(command)
        + " Fresh topics of 4 partitions per shape, loaded by kcat (`murmur2_random`, keyed by"
        " request id: predictions, then labels, each label right after its prediction in event"
        " time, 1 ms apart), then the default worker (Kafka-native) with every feature"
        " tracked; pairs/s from its first event consumed to the last outcome taken by its"
        " detection stage (which holds the last `worker.lateness_seconds`, 2 s, of event time"
        " until the stream has been quiet that long: part of these times);"
        " exact: the predictions, labels and joined pairs Redis shows are the pairs loaded."
        " Kafka runs on the same machine.",
        "",
        *machine(STACK, load_before),
        "",
        *table(
            ["shape", "models", "features", "pairs", "pairs/s", "CPU µs/pair", "exact", "alerts"],
            rows,
            numeric=".rrrrr.r",
        ),
    ]
    for name, r in restores:
        lines += [
            "",
            f"Restore after a SIGKILL ({name}): the restarted worker restored"
            f" {r.records:,} changelog records in {r.seconds:.1f} s (its log) and was ready"
            f" {r.ready_seconds:.1f} s after it started (the group waits out the killed"
            " member's session first).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Run each shape and publish the section."""
    options = parser("python -m bench.shapes", __doc__)
    options.add_argument("--wide-pairs", type=int, default=10_000, help="pairs of a wide model")
    options.add_argument("--models", type=int, default=1_000, help="models of 10 features")
    options.add_argument("--model-pairs", type=int, default=50, help="pairs of each of them")
    args = options.parse_args(argv)
    if args.quick:
        args.wide_pairs, args.models, args.model_pairs = 200, 20, 10
    command = (
        f"{COMMAND} --wide-pairs {args.wide_pairs} --models {args.models}"
        f" --model-pairs {args.model_pairs}"
    )
    wide = Shape(models=1, error_rates=(0.05, 0.45), segment=1_000, seed=SEED, spacing_us=1_000)
    shapes = [
        Traffic(f"{width:,} features", replace(wide, numeric_features=width - 1), args.wide_pairs)
        for width in (300, 1_000)
    ]
    many = Shape(models=args.models, numeric_features=9, seed=SEED, spacing_us=1_000)
    shapes.append(Traffic(f"{args.models:,} models", many, args.models * args.model_pairs))
    load_before = load_average()
    outcomes = [run_shape(traffic, restore=traffic is shapes[-1]) for traffic in shapes]
    publish(render(outcomes, command, load_before), args.output)


if __name__ == "__main__":
    main()
