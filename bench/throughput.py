"""Joined pairs per second: the Python ceiling and the real worker on the same pre-loaded topics.

Each round pre-loads ``--pairs`` requests (prediction + label, the simulator's shape, four
models whose error rate jumps between 5% and 45% every 5,000 outcomes, so alerts fire) into
fresh topics with ``kcat`` (an outside client: the predictions, then the labels, by
librdkafka's ``murmur2_random``, Kafka's default partitioner), then runs on them, one after
the other:

1. the tutorial loop (``bench/tutorial.py``) in this process, timed from its first message
   consumed to its last pair joined;
2. ``driftstream worker`` (the Kafka-native runtime) as a child process, timed from its first
   event consumed (the first message it wrote to ``observations``, its repartition topic or
   its join changelog, by Kafka timestamp) to the moment Redis shows the detection stage has
   taken every outcome (polled every 0.1 s, flushed every 0.2 s); the join stage's own end is
   its last ``observations`` message;
3. the Kafka-native worker again with ``join.repartition`` false (no repartition hop), on
   fresh topics pre-loaded with the same requests (co-partitioned: kcat's murmur2 by key);
4. the Kafka-native worker as two processes (``--processes 2``), on fresh topics again;
5. ``driftstream worker --engine faust`` the same way, on fresh topics pre-loaded with the
   first ``--faust-pairs`` of the same requests (it is many times slower).

Both also report pairs per CPU-second of their own processes, which the load of others
on the machine changes far less than pairs per second. Results go to the "## Throughput"
section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.throughput [--pairs 200000] [--rounds 2] [--quick]
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    Bench,
    bench_topics,
    cpu_seconds,
    create_topic,
    kcat_preload,
    shared_services,
    time_bounds,
)
from bench.results import STACK, load_average, machine, parser, progress, publish, table, written
from bench.traffic import Shape, generate
from bench.tutorial import LoopResult, run_tutorial
from stream_app.local.services.process import wait_until
from stream_app.runtimes import RUNTIMES, Engine

SECTION = "## Throughput"
COMMAND = ".venv/bin/python -m bench.throughput"
SHAPE = Shape(models=4, numeric_features=10, error_rates=(0.05, 0.45), segment=5_000)
POLL_SECONDS = 0.1
FLUSH_SECONDS = "0.2"


@dataclass(frozen=True)
class WorkerResult:
    """The worker's run: pairs, seconds to the last outcome detected and to the last joined,
    CPU seconds per pair of its process, and its alerts."""

    engine: Engine
    repartition: bool
    processes: int
    pairs: int
    seconds: float
    join_seconds: float | None
    cpu_per_pair: float
    alerts: int


def measure_worker(
    bench: Bench,
    pairs: int,
    name: str,
    profile: Path | None,
    engine: Engine = "kafka",
    repartition: bool = True,
    env: Mapping[str, str] | None = None,
    processes: int = 1,
) -> WorkerResult:
    """Run a worker (``processes`` of them, ``driftstream worker --processes``) over the
    pre-loaded topics until it has detected on ``pairs`` outcomes (the join stage's time only
    when that is all of them); ``env`` adds settings.

    With ``profile``, py-spy samples the worker from its first counted event to its last outcome
    and writes collapsed stacks there.
    """
    timeout = 300 + pairs / 20  # a loaded machine: at least 20 pairs/s
    flush = {
        "DRIFTSTREAM_WORKER__REDIS_FLUSH_SECONDS": FLUSH_SECONDS,
        "DRIFTSTREAM_JOIN__REPARTITION": str(repartition).lower(),
        **(env or {}),
    }
    args = ("--processes", str(processes)) if processes > 1 else ()
    with bench.worker(name, engine, args, **flush) as worker:
        assert worker.process is not None
        pid = worker.process.pid

        def started() -> bool:
            if not worker.running:
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            return bench.counter("predictions", name) > 0

        if not wait_until(started, timeout, POLL_SECONDS):
            raise RuntimeError(f"worker consumed nothing:\n{worker.log_tail()}")
        first_cpu, first_count = cpu_seconds(pid), bench.signal_count("error_rate", name)
        spy = _py_spy(pid, profile) if profile else None
        progress(f"{name}: started; waiting for {pairs:,} outcomes")
        last_report = time.monotonic()

        def finished() -> bool:
            nonlocal last_report
            count = bench.signal_count("error_rate", name)
            if time.monotonic() - last_report > 15:
                progress(f"{name}: {count:,} of {pairs:,} outcomes detected")
                last_report = time.monotonic()
            return count >= pairs or not worker.running

        wait_until(finished, timeout, POLL_SECONDS)
        if not worker.running:
            raise RuntimeError(f"{name} exited (code {worker.stop()}):\n{worker.log_tail()}")
        end, cpu = time.time(), cpu_seconds(pid) - first_cpu
        done = bench.signal_count("error_rate", name)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        alerts = bench.counter("alerts", name)
        total = bench.counter("joined", name)
    if done < pairs:
        raise RuntimeError(f"{name}: only {done:,} of {pairs:,} outcomes in {timeout:.0f}s")
    written = ["join-store", "predictions-repartition"] if engine == "kafka" else ["join-changelog"]
    starts = [
        bounds[0]
        for topic in [
            bench.topics.observations,
            *(f"{bench.topics.prefix}{name}-{t}" for t in written),
        ]
        if (bounds := time_bounds(bench.settings, topic)) is not None
    ]
    observed = time_bounds(bench.settings, bench.topics.observations)
    assert observed is not None
    assert starts
    start = min(starts)
    join_seconds = observed[1] - start if total <= pairs else None
    return WorkerResult(
        engine,
        repartition,
        processes,
        pairs,
        end - start,
        join_seconds,
        cpu / (done - first_count),
        alerts,
    )


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Round:
    """One round's measurements on the same topics."""

    tutorial: LoopResult
    workers: list[WorkerResult]


def run_round(pairs: int, faust_pairs: int, number: int) -> Round:
    """Fresh topics, pre-loaded; the tutorial loop and the Kafka-native worker on them, then
    the Faust worker on topics of its own (a worker reads its own internal ``observations``,
    so two runtimes cannot share them)."""
    base = shared_services()
    with bench_topics(base, "throughput") as bench:
        progress(f"round {number}: pre-loading {pairs:,} pairs into {bench.topics.prefix}*")
        kcat_preload(bench, generate(SHAPE, pairs), f"round {number}")
        alerts_topic = f"{bench.topics.prefix}tutorial-alerts"
        create_topic(bench.settings, alerts_topic)
        progress(f"round {number}: tutorial loop")
        tutorial = run_tutorial(bench.settings, bench.topics, alerts_topic, pairs, 600)
        if tutorial.pairs < pairs:
            raise RuntimeError(f"tutorial joined {tutorial.pairs:,} of {pairs:,} pairs")
        progress(f"round {number}: tutorial {pairs / tutorial.seconds:,.0f} pairs/s; worker")
        workers = [measure_worker(bench, pairs, "kafka", profile=None, engine="kafka")]
        progress(f"round {number}: Kafka-native worker {pairs / workers[0].seconds:,.0f} pairs/s")
    with bench_topics(base, "throughput-nohop") as bench:  # its own observations, as below
        kcat_preload(bench, generate(SHAPE, pairs), f"round {number}")  # murmur2 by key
        workers.append(measure_worker(bench, pairs, "kafka", profile=None, repartition=False))
        progress(f"round {number}: without the hop {pairs / workers[-1].seconds:,.0f} pairs/s")
    with bench_topics(base, "throughput-two") as bench:
        kcat_preload(bench, generate(SHAPE, pairs), f"round {number}")
        workers.append(measure_worker(bench, pairs, "kafka", profile=None, processes=2))
        progress(f"round {number}: two processes {pairs / workers[-1].seconds:,.0f} pairs/s")
    if faust_pairs:
        with bench_topics(base, "throughput-faust") as bench:
            kcat_preload(bench, generate(SHAPE, faust_pairs), f"round {number}")
            workers.append(
                measure_worker(bench, faust_pairs, "faust", profile=None, engine="faust")
            )
            progress(
                f"round {number}: Faust worker {faust_pairs / workers[-1].seconds:,.0f} pairs/s"
            )
    return Round(tutorial, workers)


def render(rounds: Sequence[Round], pairs: int, faust_pairs: int, load_before: str) -> str:
    """The section: how, machine, one row per measurement, the ratios, the targets."""
    rows: list[tuple[object, ...]] = []
    for number, r in enumerate(rounds, 1):
        tutorial_rate = pairs / r.tutorial.seconds
        tutorial_cpu = pairs / r.tutorial.cpu_seconds
        rows.append(
            (
                number,
                "Python ceiling (tutorial loop)",
                f"{tutorial_rate:,.0f}",
                "1.00x",
                f"{tutorial_cpu:,.0f}",
                "1.00x",
                r.tutorial.alerts,
            )
        )
        for w in r.workers:
            runtime = RUNTIMES[w.engine].title + ("" if w.repartition else " (no repartition hop)")
            runtime += f", --processes {w.processes}" if w.processes > 1 else ""
            rate, cpu = w.pairs / w.seconds, 1 / w.cpu_per_pair
            if w.join_seconds is not None:
                join_rate = w.pairs / w.join_seconds
                ratio = f"{join_rate / tutorial_rate:.2f}x"
                rows.append((number, f"{runtime} worker, join stage", f"{join_rate:,.0f}", ratio))
            rows.append(
                (
                    number,
                    f"{runtime} worker, end to end ({w.pairs:,} pairs)",
                    f"{rate:,.0f}",
                    f"{rate / tutorial_rate:.2f}x",
                    f"{cpu:,.0f}",
                    f"{cpu / tutorial_cpu:.2f}x",
                    w.alerts,
                )
            )
    default = [w for r in rounds for w in r.workers if w.engine == "kafka" and w.repartition]
    best = max(w.pairs / w.seconds for w in default)
    per_cpu = max(
        (1 / w.cpu_per_pair) / (pairs / r.tutorial.cpu_seconds)
        for r in rounds
        for w in r.workers
        if w.engine == "kafka" and w.repartition
    )
    lines = [
        SECTION,
        "",
        written(f"{COMMAND} --pairs {pairs} --faust-pairs {faust_pairs} --rounds {len(rounds)}")
        + f" Each round pre-loads {pairs:,} pairs (4 partitions, 4 models, 10 numeric features,"
        " error rate jumping between 5% and 45% every 5,000 outcomes of a model) into fresh"
        " topics with kcat (the predictions, then the labels, `murmur2_random`), then runs the"
        " tutorial loop and the Kafka-native worker on them, one after"
        " the other, then on fresh topics with the same pairs the Kafka-native worker without"
        " its repartition hop (`join.repartition` false) and the Kafka-native worker as two"
        " processes (`--processes 2`, one consumer group), and the Faust worker"
        f" on fresh topics with the first {faust_pairs:,}"
        " pairs (a worker reads its own `observations`). Pairs/s is wall time"
        " from the first event consumed to the last pair joined (tutorial, worker's join"
        " stage) or to the last outcome taken by the detection stage (worker end to end: the"
        " detection stage holds the last `worker.lateness_seconds`, 2 s, of event time until"
        " the stream has been quiet that long: at this traffic's 10,000 requests per second"
        " of event time, the last 20,000 pairs wait out about 2.5 s of quiet, a part of every"
        " end-to-end time that is latency, not work). Pairs per CPU-second counts only the"
        " worker's own CPU time (its processes'), which other load on the machine distorts"
        " far less. Kafka runs on the same machine, with 2 cores for"
        " it and the worker.",
        "",
        *machine(STACK, load_before),
        "",
        *table(
            [
                "round",
                "what",
                "pairs/s",
                "vs ceiling",
                "pairs/CPU-s",
                "vs ceiling",
                "alerts",
            ],
            [row + ("",) * (7 - len(row)) for row in rows],
            numeric="r.rrrrr",
        ),
        "",
        f"Targets (the default, Kafka-native worker): ≥ 0.5 of the tutorial loop's pairs per"
        f" CPU-second (best round {per_cpu:.2f}): {'met' if per_cpu >= 0.5 else 'not met'};"
        f" ≥ 20,000 pairs/s end to end (best round {best:,.0f}):"
        f" {'met' if best >= 20_000 else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the rounds and publish the section."""
    options = parser("python -m bench.throughput", __doc__)
    options.add_argument("--pairs", type=int, default=200_000, help="pairs per round")
    options.add_argument("--rounds", type=int, default=2, help="rounds (fresh topics each)")
    options.add_argument(
        "--faust-pairs", type=int, default=20_000, help="outcomes the Faust runtime is timed on"
    )
    args = options.parse_args(argv)
    if args.quick:
        args.pairs, args.faust_pairs, args.rounds = 20_000, 2_000, 1
    load_before = load_average()
    rounds = [
        run_round(args.pairs, args.faust_pairs, number) for number in range(1, args.rounds + 1)
    ]
    publish(render(rounds, args.pairs, args.faust_pairs, load_before), args.output)


if __name__ == "__main__":
    main()
