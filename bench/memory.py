"""Memory per pending prediction: the worker's RSS with N unmatched predictions of 10 features.

For each size a worker runs on fresh topics pre-loaded with that many predictions and no
labels (9 numeric features and a zip code each, event time spread over far less than the join
TTL, so nothing expires), and its resident set size is read once Redis shows the join stage
has counted them all. A run with ``BASELINE`` predictions gives the worker's own footprint;
bytes per entry are the growth over it, and between the two largest sizes (the slope, free of
fixed costs). Alongside, the same join state is built in this process as the default
(Kafka-native) worker holds it, a ``JoinBuffer`` over a
:class:`~pipeline.state.ChangeTrackingStore` of entries, decoding included (what an entry keeps
of its event counts), and measured with tracemalloc, split into the store and the buffer's
expiry index. Results go to the "## Memory" section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.memory [--sizes 100000 1000000] [--quick]
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

from bench.harness import bench_topics, preload, rss_bytes, shared_services
from bench.results import STACK, load_average, machine, parser, progress, publish, table, written
from bench.traffic import Shape, generate
from detectors.join_buffer import JoinBuffer, JoinEntry
from pipeline.state import ChangeTrackingStore
from schemas.codec import decode
from schemas.events import PredictionEvent
from stream_app.local.services.process import wait_until

SECTION = "## Memory"
COMMAND = ".venv/bin/python -m bench.memory"
SHAPE = Shape(numeric_features=9)
"""10 features: nine numbers and the zip code."""
BASELINE = 1_000
TARGET_BYTES = 1024


@dataclass(frozen=True)
class InProcess:
    """Bytes per pending prediction of the join state, measured in this process."""

    total: float
    index: float

    @property
    def store(self) -> float:
        return self.total - self.index


def worker_rss(pending: int) -> int:
    """The worker's RSS once its join stage has counted ``pending`` pre-loaded predictions."""
    with bench_topics(shared_services(), "memory") as bench:
        progress(f"pre-loading {pending:,} predictions")
        preload(bench, generate(SHAPE, pending), labels=False)
        with bench.worker("worker") as worker:
            assert worker.process is not None

            def counted() -> bool:
                if not worker.running:
                    raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
                return bench.counter("predictions") >= pending

            if not wait_until(counted, 300 + pending / 200, 1.0):
                raise RuntimeError(f"the worker did not take {pending:,} predictions in time")
            rss = rss_bytes(worker.process.pid)
    progress(f"{pending:,} pending: RSS {rss / 2**20:,.0f} MiB")
    return rss


def in_process(pending: int) -> InProcess:
    """Bytes per entry of ``pending`` predictions in a JoinBuffer over a ChangeTrackingStore,
    and of them the expiry index."""
    requests = list(generate(SHAPE, pending))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store: ChangeTrackingStore[JoinEntry] = ChangeTrackingStore()
        buffer = JoinBuffer(store, ttl_seconds=3600, max_pending=10 * pending)
        for request in requests:
            buffer.offer(decode(PredictionEvent, request.prediction))
        store.take_changes()  # what a commit does
        total = tracemalloc.get_traced_memory()[0] - before
        buffer.rebuild_index()  # a fresh index, without the stale heap items offers leave
        index = tracemalloc.get_traced_memory()[0] - before - total
        buffer._since.clear()
        buffer._heap.clear()
        index += total - (tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    return InProcess(total / pending, index / pending)


def render(rss: dict[int, int], join: InProcess, sizes: Sequence[int], load: str) -> str:
    """The section: how, machine, RSS table, in-process split, the target."""
    base = rss[BASELINE]
    rows = [
        (f"{n:,}", f"{rss[n] / 2**20:,.0f}", f"{(rss[n] - base) / (n - BASELINE):,.0f}")
        for n in sizes
    ]
    largest, previous = sizes[-1], sizes[-2] if len(sizes) > 1 else BASELINE
    slope = (rss[largest] - rss[previous]) / (largest - previous)
    lines = [
        SECTION,
        "",
        f"{written(COMMAND + ' --sizes ' + ' '.join(map(str, sizes)))} Worker RSS with N"
        " pending (unmatched) predictions of 10 features (4 partitions, so N/4 per partition's"
        f" join), read once the join stage counted all N; a run with {BASELINE:,} predictions"
        f" is the baseline ({base / 2**20:,.0f} MiB). In process, the same join state (a"
        " JoinBuffer over a ChangeTrackingStore, as the default runtime keeps it) is measured"
        " with tracemalloc.",
        "",
        *machine(STACK, load),
        "",
        *table(["pending predictions", "worker RSS MiB", "bytes/entry over baseline"], rows, "rrr"),
        "",
        f"Slope between {previous:,} and {largest:,}: {slope:,.0f} bytes per pending"
        f" prediction. In process: {join.total:,.0f} bytes per entry, of which the store (the"
        f" request id, the entry and what it keeps of the prediction) {join.store:,.0f} and"
        f" the expiry index (a dict and a heap of (time, id)) {join.index:,.0f}.",
        "",
        f"Target ≤ {TARGET_BYTES:,} bytes per pending prediction: "
        + ("met" if slope <= TARGET_BYTES else "not met")
        + f" ({slope:,.0f} bytes, slope of the worker's RSS).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every size and publish the section."""
    options = parser("python -m bench.memory", __doc__)
    options.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = options.parse_args(argv)
    if args.quick:
        args.sizes = [10_000, 50_000]
    load_before = load_average()
    join = in_process(min(args.sizes[0], 100_000))
    rss = {n: worker_rss(n) for n in [BASELINE, *args.sizes]}
    publish(render(rss, join, args.sizes, load_before), args.output)


if __name__ == "__main__":
    main()
