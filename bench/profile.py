"""Where the worker's time goes: py-spy samples of ``driftstream worker`` (the default,
Kafka-native runtime) on pre-loaded topics.

The throughput benchmark's worker run (``bench.throughput.measure_worker``) with py-spy
sampling the worker process at 200 Hz from its first counted event to its last outcome. Each
sample's stack is charged to the innermost frame that is not generic machinery (asyncio,
pydantic internals, the standard library), and that frame's file to a category; the
"## Worker profile" section of ``docs/benchmarks.md`` gets the category shares and the top
functions by own time::

    .venv/bin/python -m bench.profile [--pairs 50000] [--keep samples.txt] [--quick]
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import bench_topics, preload, shared_services
from bench.results import STACK, load_average, machine, parser, progress, publish, table, written
from bench.throughput import SHAPE, measure_worker
from bench.traffic import generate

SECTION = "## Worker profile"
COMMAND = ".venv/bin/python -m bench.profile"
MAIN_THREAD = "_run_module_as_main"

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("input decoding (schemas.codec)", ("schemas/",)),
    ("observations encode/decode", ("pipeline/observations.py",)),
    (
        "join core and its store",
        (
            "detectors/join_buffer.py",
            "pipeline/join.py",
            "pipeline/edge.py",
            "pipeline/state.py",
            "stream_app/runtimes/faust/join_stage.py",
        ),
    ),
    ("event-time merge of the inputs", ("pipeline/partition_merge.py",)),
    ("detectors (bank, signals, river)", ("detectors/", "river/", "pipeline/detect.py")),
    ("changelog writes and restore", ("stream_app/runtimes/kafka/changelog.py",)),
    ("Redis live state", ("stream_app/live_state/", "redis/")),
    ("Prometheus metrics", ("stream_app/metrics.py", "prometheus_client/")),
    ("the runtime's own lines", ("stream_app/",)),
    ("Faust tables and changelog", ("faust/tables/", "faust/stores/")),
    ("Python logging (records made, then filtered out)", ("logging/",)),
    (
        "producing (Faust topic send, aiokafka producer)",
        ("faust/topics.py", "faust/transport/producer.py", "aiokafka/producer/", "faust/channels"),
    ),
    (
        "Kafka client I/O (Faust consumer, aiokafka connections, fetcher)",
        ("faust/transport/", "aiokafka/"),
    ),
    ("Faust streams, agents, events (per-event machinery)", ("faust/", "mode/")),
)
"""Category, and the path fragments of its frames; the first category that matches wins."""

GENERIC = re.compile(
    r"\((asyncio/|selectors\.py|<frozen |typing\.py|abc\.py|_weakrefset\.py|weakref\.py|"
    r"enum\.py|functools\.py|contextlib\.py|pydantic/|pydantic_core/|threading\.py|"
    r"concurrent/|json/|datetime\.py|heapq\.py|collections/)"
)
"""Frames that belong to whoever called them."""


@dataclass(frozen=True)
class Profile:
    """Samples of the main thread (the event loop) by category and by own function, and of
    the other threads (aiokafka's consumer thread, executors)."""

    main: Counter[str]
    functions: Counter[str]
    other_threads: int

    @property
    def main_total(self) -> int:
        return sum(self.main.values())


def frame_file(frame: str) -> str:
    """``'decode (schemas/codec.py:51)'`` -> ``'schemas/codec.py'``."""
    found = re.search(r"\(([^()]*?)(?::\d+)?\)$", frame)
    return found[1] if found else frame


def category(stack: Sequence[str]) -> str:
    """The category of the innermost non-generic frame (``event loop`` when all are)."""
    for frame in reversed(stack):
        if GENERIC.search(frame):
            continue
        path = frame_file(frame)
        for name, fragments in CATEGORIES:
            if any(fragment in path for fragment in fragments):
                return name
        return "other"
    return "asyncio event loop itself"


def aggregate(lines: Iterable[str]) -> Profile:
    """Fold py-spy's raw (collapsed) output: ``frame;frame;... count`` per line.

    >>> profile = aggregate([
    ...     "_run_module_as_main (<frozen runpy>:198);decode (schemas/codec.py:51) 3",
    ...     "_run_module_as_main (<frozen runpy>:198);create_task (asyncio/base_events.py:436) 1",
    ...     "Thread._bootstrap (threading.py:1002);select (selectors.py:468) 5",
    ... ])
    >>> dict(profile.main), profile.other_threads
    ({'input decoding (schemas.codec)': 3, 'asyncio event loop itself': 1}, 5)
    """
    main: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    other = 0
    for line in lines:
        stack_text, _, count_text = line.rstrip().rpartition(" ")
        if not stack_text:
            continue
        stack, count = stack_text.split(";"), int(count_text)
        if not stack[0].startswith(MAIN_THREAD):
            other += count
            continue
        main[category(stack)] += count
        functions[re.sub(r":\d+\)$", ")", stack[-1])] += count
    return Profile(main, functions, other)


def render(profile: Profile, pairs: int, cpu_per_pair: float, load_before: str) -> str:
    """The section: how, machine, categories, top functions."""
    total = profile.main_total
    everything = total + profile.other_threads
    categories = [
        (name, f"{n / total:.1%}", f"{n / total * cpu_per_pair * 1e6:,.0f}")
        for name, n in profile.main.most_common()
    ]
    functions = [(name, f"{n / total:.1%}") for name, n in profile.functions.most_common(15)]
    lines = [
        SECTION,
        "",
        f"{written(COMMAND + f' --pairs {pairs}')} py-spy at 200 Hz on the worker while it"
        f" works through {pairs:,} pre-loaded pairs (the throughput benchmark's traffic). The"
        f" event loop thread holds {total / everything:.0%} of the {everything:,} samples; the"
        " rest is the threads the event loop hands blocking calls to (the Kafka-native"
        " runtime's consume and commit calls into librdkafka). The worker used"
        f" {cpu_per_pair * 1e6:,.0f} µs of CPU per joined pair; µs/pair below splits that by"
        " the event loop thread's shares, charging each sample to its innermost frame that is"
        " not asyncio, pydantic or standard library machinery.",
        "",
        *machine(STACK, load_before),
        "",
        *table(["where (event loop thread)", "share", "µs/pair"], categories, numeric=".rr"),
        "",
        "Top functions by own time (event loop thread):",
        "",
        *table(["function (file)", "share"], functions, numeric=".r"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Profile one worker run and publish the section."""
    options = parser("python -m bench.profile", __doc__)
    options.add_argument("--pairs", type=int, default=50_000, help="pre-loaded pairs")
    options.add_argument("--keep", type=Path, help="also keep py-spy's raw samples here")
    args = options.parse_args(argv)
    if args.quick:
        args.pairs = 10_000
    load_before = load_average()
    with tempfile.TemporaryDirectory() as scratch, bench_topics(shared_services(), "prof") as bench:
        progress(f"pre-loading {args.pairs:,} pairs")
        preload(bench, generate(SHAPE, args.pairs))
        samples = Path(scratch) / "worker.txt"
        result = measure_worker(bench, args.pairs, "worker", profile=samples)
        profile = aggregate(samples.read_text().splitlines())
        if args.keep:
            args.keep.write_text(samples.read_text())
    publish(render(profile, args.pairs, result.cpu_per_pair, load_before), args.output)


if __name__ == "__main__":
    main()
