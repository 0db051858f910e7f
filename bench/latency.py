"""Label-to-alert latency of the real worker at a fixed offered rate.

A worker runs on fresh topics and is warmed up (its first requests processed) before this
process offers ``--rate`` pairs/s for ``--seconds``: every millisecond's share of requests is
produced on time, each label ``LAG`` requests after its prediction. Four models' error rates
jump between 5% and 45% every ``segment_for(...)`` outcomes (at least 1,000, the alert
cooldown; about four drifts per model and run), so concept alerts keep firing. Afterwards:

- **label → alert**: an alert's ``event_time`` is the prediction time of the outcome that
  fired it, which names the request; latency is the wall-clock time a ``read_committed``
  consumer in this process received the alert (what a pager sees: after the worker's
  transaction committed) minus the wall-clock time that request's label was produced.
- **label → outcome**: for every joined outcome the join stage wrote to ``observations``, its
  Kafka timestamp (set when the worker produced it, before its transaction commits) minus the
  time the label was produced (many more samples; it leaves out the detection stage).

Each rate runs once per ``--lateness`` (``worker.lateness_seconds``: how long the detection
stage holds a model's observations to apply them in event-time order); the first, 0 by
default, is the baseline the others are compared with.

Results go to the "## Latency" section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.latency [--rates 2000 10000] [--seconds 30] [--lateness 0 2]
        [--processes 2] [--quick]
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, Message

from bench.harness import Bench, bench_topics, preload, read_topic, shared_services
from bench.results import (
    STACK,
    load_average,
    machine,
    parser,
    percentile,
    progress,
    publish,
    table,
    written,
)
from bench.traffic import Request, Shape, generate, index_at, request_index
from detectors.join_buffer import JoinedOutcome
from pipeline.detect import DEFAULT_LATENESS_SECONDS
from pipeline.observations import decode_observation
from producers.kafka_producer import EventProducer
from schemas.codec import decode
from schemas.events import DriftAlert
from stream_app.local.services.process import wait_until
from stream_app.settings import Settings

SECTION = "## Latency"
COMMAND = ".venv/bin/python -m bench.latency"
BOUND_SECONDS = 0.25
"""What a label → alert p99 may add to the lateness (issue 27's target)."""
WARMUP = 2_000
LAG = 100
"""Requests between a prediction and its label."""
SLICE_SECONDS = 0.001
DRAIN_SECONDS = 300.0
OUTCOME_TAG = b"O"


@dataclass(frozen=True)
class LatencyResult:
    """One offered rate: what was offered and achieved, and the latencies in seconds."""

    rate: int
    lateness: float
    achieved: float
    pairs: int
    caught_up: bool
    alerts: list[float]
    outcomes: list[float]


def segment_for(pairs: int, models: int = 4) -> int:
    """Outcomes per model between error-rate jumps: about four jumps per model in ``pairs``.

    >>> segment_for(15_000), segment_for(600_000)
    (1000, 30000)
    """
    return max(1_000, pairs // models // 5)


class ArrivalClock:
    """A ``read_committed`` consumer of one topic in a thread: the wall-clock time each record
    became visible to it, by (partition, offset)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.seen: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **settings.kafka.client_config(),
                "group.id": f"bench-arrival-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, name="arrivals", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(num_messages=100, timeout=0.05):
                if message.error() is None:
                    self.seen[(message.partition() or 0, message.offset() or 0)] = time.time()

    def __enter__(self) -> ArrivalClock:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def offer(bench: Bench, requests: Sequence[Request], rate: float) -> list[float]:
    """Produce the requests at ``rate`` per second, labels ``LAG`` requests late; the wall
    time each label was produced, by position."""
    produced = [0.0] * len(requests)
    per_slice = max(1, round(rate * SLICE_SECONDS))
    topics = bench.topics
    with EventProducer(bench.settings.kafka, topics) as producer:
        start = time.monotonic()
        for first in range(0, len(requests) + LAG, per_slice):
            due = start + first / rate
            if (ahead := due - time.monotonic()) > 0:
                time.sleep(ahead)  # pacing the offered load, not synchronising
            for i in range(first, min(first + per_slice, len(requests) + LAG)):
                if i < len(requests):
                    request = requests[i]
                    producer.send_encoded(topics.predictions, request.key, request.prediction)
                if 0 <= (j := i - LAG) < len(requests):
                    labelled = requests[j]
                    producer.send_encoded(topics.labels, labelled.key, labelled.label)
                    produced[j] = time.time()
        elapsed = time.monotonic() - start
    progress(f"offered {len(requests):,} pairs at {len(requests) / elapsed:,.0f} pairs/s")
    return produced


def measure(rate: int, seconds: float, lateness: float, processes: int = 1) -> LatencyResult:
    """One worker (``driftstream worker --processes``) holding observations ``lateness``
    seconds, warmed up, then ``rate`` pairs/s for ``seconds``."""
    count = int(rate * seconds)
    spacing = max(1, round(1e6 / rate))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    segment = segment_for(count)
    shape = Shape(error_rates=(0.05, 0.45), segment=segment, start=start, spacing_us=spacing)
    warmup_shape = replace(
        shape, seed=shape.seed + 1, error_rates=(0.05,), start=start - timedelta(minutes=10)
    )
    requests = list(generate(shape, count))
    with bench_topics(shared_services(), f"latency{rate}") as bench:
        preload(bench, generate(warmup_shape, WARMUP))
        with (
            bench.worker(
                "worker",
                args=("--processes", str(processes)),
                DRIFTSTREAM_WORKER__LATENESS_SECONDS=str(lateness),
            ) as worker,
            ArrivalClock(bench.settings, bench.topics.alerts) as arrivals,
        ):

            def processed(n: int) -> bool:
                if not worker.running:
                    raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
                return bench.signal_count("error_rate") >= n

            if not wait_until(lambda: processed(WARMUP), DRAIN_SECONDS, 0.5):
                raise RuntimeError(f"worker did not warm up:\n{worker.log_tail()}")
            progress(f"{rate:,} pairs/s: worker warm; offering for {seconds:.0f}s")
            begun = time.monotonic()
            produced = offer(bench, requests, rate)
            achieved = count / (time.monotonic() - begun)
            caught_up = wait_until(lambda: processed(WARMUP + count), DRAIN_SECONDS, 0.5)
        alerts = read_topic(bench.settings, bench.topics.alerts)
        observations = read_topic(bench.settings, bench.topics.observations)
    return LatencyResult(
        rate,
        lateness,
        achieved,
        count,
        caught_up,
        alert_latencies(alerts, shape, produced, arrivals.seen),
        outcome_latencies(observations, shape, produced),
    )


def alert_latencies(
    messages: Sequence[Message],
    shape: Shape,
    produced: Sequence[float],
    seen: dict[tuple[int, int], float],
) -> list[float]:
    """Seconds from the label that completed the firing outcome to each concept alert being
    visible to a ``read_committed`` consumer (``seen``)."""
    latencies = []
    for message in messages:
        alert = decode(DriftAlert, message.value() or b"")
        index = index_at(shape, alert.event_time)
        arrived = seen.get((message.partition() or 0, message.offset() or 0))
        if alert.kind == "concept" and index is not None and index < len(produced) and arrived:
            latencies.append(arrived - produced[index])
    return latencies


def outcome_latencies(
    messages: Sequence[Message], shape: Shape, produced: Sequence[float]
) -> list[float]:
    """Seconds from each label to its joined outcome on ``observations``."""
    latencies = []
    for message in messages:
        value = message.value() or b""
        if not value.startswith(OUTCOME_TAG):
            continue
        outcome = decode_observation(value)
        assert isinstance(outcome, JoinedOutcome)
        index = request_index(shape, outcome.request_id)
        if index is not None and index < len(produced):
            latencies.append(message.timestamp()[1] / 1000 - produced[index])
    return latencies


def _ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:,.0f}" if values else "-"


def render(
    results: Sequence[LatencyResult], seconds: float, processes: int, load_before: str
) -> str:
    """The section: how, machine, one row per rate and latency kind, the target."""
    rows = []
    for r in results:
        for what, values in (("label → alert", r.alerts), ("label → joined outcome", r.outcomes)):
            rows.append(
                (
                    f"{r.rate:,}",
                    f"{r.lateness:g}",
                    f"{r.achieved:,.0f}",
                    "yes" if r.caught_up else "no",
                    what,
                    f"{len(values):,}",
                    _ms(values, 50),
                    _ms(values, 95),
                    _ms(values, 99),
                    _ms(values, 100),
                )
            )
    at_10k = [r for r in results if r.rate == 10_000 and r.alerts]
    verdict = (
        f"p99 label → alert at 10,000 pairs/s is {_ms(at_10k[0].alerts, 99)} ms: "
        + ("met" if percentile(at_10k[0].alerts, 99) < BOUND_SECONDS else "not met")
        if at_10k
        else "no run at 10,000 pairs/s with alerts"
    )
    lines = [
        SECTION,
        "",
        f"{written(_command(results, seconds, processes))} The worker"
        f" ({'one process' if processes == 1 else f'`--processes {processes}`'}) runs on fresh"
        " topics"
        " (4 partitions, 4 models, error rate jumping between 5% and 45% about four times per"
        " model and run, at least 1,000 outcomes apart), warmed up on"
        f" {WARMUP:,} pairs, then this process offers the rate for"
        f" {seconds:.0f} s, each label {LAG} requests after its prediction. Latency runs from the"
        " wall-clock time a label was produced to the moment a `read_committed` consumer in"
        " this process received the concept alert that outcome fired (percentiles over that"
        " many alerts; after the worker's transaction committed), or to the Kafka timestamp of"
        " the joined outcome on `observations` (every pair; join stage only, as produced,"
        " before its commit)."
        " 'kept up' says whether the worker had processed every outcome within"
        f" {DRAIN_SECONDS:.0f} s after the offer ended; when it did not, latencies include the"
        " backlog.",
        "",
        *machine(STACK, load_before),
        "",
        *table(
            [
                "offered pairs/s",
                "lateness s",
                "achieved",
                "kept up",
                "latency",
                "samples",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
            ],
            rows,
            numeric="rrr..rrrrr",
        ),
        "",
        *_hold_costs(results),
        *_bounds(results),
        f"Target p99 label → alert < 250 ms at 10,000 pairs/s: {verdict}.",
    ]
    return "\n".join(lines) + "\n"


def _command(results: Sequence[LatencyResult], seconds: float, processes: int) -> str:
    """The command that measures ``results`` again."""
    rates = " ".join(str(rate) for rate in dict.fromkeys(r.rate for r in results))
    lateness = " ".join(f"{x:g}" for x in dict.fromkeys(r.lateness for r in results))
    command = f"{COMMAND} --rates {rates} --seconds {seconds:.0f} --lateness {lateness}"
    return command + (f" --processes {processes}" if processes > 1 else "")


def _hold_costs(results: Sequence[LatencyResult]) -> list[str]:
    """Per rate, what each lateness adds to the label → alert p50 over the rate's first run
    (the baseline), as a difference and a ratio."""
    lines = []
    for rate in dict.fromkeys(r.rate for r in results):
        baseline, *others = [r for r in results if r.rate == rate]
        for r in others:
            if r.alerts and baseline.alerts:
                base, held = percentile(baseline.alerts, 50), percentile(r.alerts, 50)
                lines.append(
                    f"At {rate:,} pairs/s a lateness of {r.lateness:g} s adds"
                    f" {(held - base) * 1000:,.0f} ms to the p50 label → alert over"
                    f" {baseline.lateness:g} s ({held / base:.1f}x)."
                )
    return [*lines, ""] if lines else []


def _bounds(results: Sequence[LatencyResult]) -> list[str]:
    """Each run's p99 label → alert against the issue's bound for it, the lateness plus
    250 ms."""
    lines = []
    for r in results:
        if r.alerts:
            p99, bound = percentile(r.alerts, 99), r.lateness + BOUND_SECONDS
            lines.append(
                f"- {r.rate:,} pairs/s, lateness {r.lateness:g} s: p99 {p99 * 1000:,.0f} ms"
                f" against {bound * 1000:,.0f} ms, {'within' if p99 < bound else 'over'}."
            )
    if not lines:
        return []
    head = f"p99 label → alert against the lateness plus {BOUND_SECONDS * 1000:.0f} ms:"
    return [head, "", *lines, ""]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every rate and publish the section."""
    options = parser("python -m bench.latency", __doc__)
    options.add_argument("--rates", type=int, nargs="+", default=[250, 2_000, 10_000])
    options.add_argument("--seconds", type=float, default=30.0, help="offer time per rate")
    options.add_argument(
        "--lateness",
        type=float,
        nargs="+",
        default=[0.0, DEFAULT_LATENESS_SECONDS],
        help="worker.lateness_seconds per run of each rate; the first is the baseline",
    )
    options.add_argument(
        "--processes", type=int, default=1, help="the worker's processes (--processes)"
    )
    args = options.parse_args(argv)
    if args.quick:
        args.rates, args.seconds = [1_000], 10.0
    load_before = load_average()
    results = [
        measure(rate, args.seconds, lateness, args.processes)
        for rate in args.rates
        for lateness in args.lateness
    ]
    publish(render(results, args.seconds, args.processes, load_before), args.output)


if __name__ == "__main__":
    main()
