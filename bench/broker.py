"""The broker ceiling: Kafka's own producer and consumer performance tools on our events.

``org.apache.kafka.tools.ProducerPerformance`` writes ``--records`` messages whose payloads are
our encoded events (predictions and labels alternating, from ``bench/traffic.py``: the same
sizes and the same compressibility) to a fresh topic with the input topics' partition count,
with the producer settings of ``producers/kafka_producer.py`` (acks=all, idempotence, lz4,
linger 20 ms, 512 KiB batches); ``ConsumerPerformance`` then reads them back. Both are the Java
clients, from the jars the local broker runs on, against the shared local broker. Results go
to the "## Broker ceiling" section of ``docs/benchmarks.md``::

    .venv/bin/python -m bench.broker [--records 2000000] [--rounds 2] [--quick]
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Bench, bench_topics, create_topic, shared_services
from bench.results import load_average, machine, parser, progress, publish, table, written
from bench.traffic import Shape, generate
from stream_app.local.services.kafka import fetch_kafka_jars

SECTION = "## Broker ceiling"
COMMAND = ".venv/bin/python -m bench.broker"
PRODUCER_PROPS = (
    "acks=all",
    "enable.idempotence=true",
    "compression.type=lz4",
    "linger.ms=20",
    "batch.size=524288",
)
"""The settings of ``producers.kafka_producer.EventProducer``, in the Java client's names."""


@dataclass(frozen=True)
class ToolRun:
    """Messages per second and MB/s of one tool run."""

    tool: str
    messages_per_second: float
    megabytes_per_second: float


def write_payloads(path: Path, count: int) -> float:
    """``count`` requests' prediction and label, one per line; their mean size in bytes."""
    sizes = []
    with path.open("wb") as out:
        for request in generate(Shape(), count):
            for payload in (request.prediction, request.label):
                out.write(payload + b"\n")
                sizes.append(len(payload))
    return sum(sizes) / len(sizes)


def parse_producer(output: str) -> ToolRun:
    """The summary line: ``N records sent, X records/sec (Y MB/sec), ...``.

    >>> parse_producer("100 records sent, 2510.4 records/sec (0.69 MB/sec), 9.1 ms avg latency")
    ToolRun(tool='ProducerPerformance', messages_per_second=2510.4, megabytes_per_second=0.69)
    """
    found = re.findall(r"records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", output)
    if not found:
        raise RuntimeError(f"no summary in ProducerPerformance output:\n{output[-2000:]}")
    rate, megabytes = found[-1]
    return ToolRun("ProducerPerformance", float(rate), float(megabytes))


def parse_consumer(output: str) -> ToolRun:
    """The CSV line after the header; ``fetch.nMsg.sec`` and ``fetch.MB.sec`` (group join
    excluded).

    >>> parse_consumer("start.time, end.time, data.consumed.in.MB, MB.sec, "
    ...     "data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, "
    ...     "fetch.nMsg.sec\\n2026-01-01 00:00:00:000, 2026-01-01 00:00:04:000, 100.0, 25.0, "
    ...     "400000, 100000.0, 3000, 1000, 100.0, 400000.0\\n")
    ToolRun(tool='ConsumerPerformance', messages_per_second=400000.0, megabytes_per_second=100.0)
    """
    lines = [line for line in output.splitlines() if line.count(",") >= 9]
    header = [name.strip() for name in lines[0].split(",")] if lines else []
    if len(lines) < 2 or "fetch.nMsg.sec" not in header:
        raise RuntimeError(f"no result in ConsumerPerformance output:\n{output[-2000:]}")
    values = dict(zip(header, (value.strip() for value in lines[-1].split(",")), strict=True))
    return ToolRun(
        "ConsumerPerformance", float(values["fetch.nMsg.sec"]), float(values["fetch.MB.sec"])
    )


def _tool(libs: Path, tool: str, arguments: list[str], timeout: float) -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java is needed for Kafka's performance tools")
    done = subprocess.run(
        [java, "-Xmx512m", "-cp", f"{libs}/*", f"org.apache.kafka.tools.{tool}", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def measure_round(
    bench: Bench, libs: Path, payloads: Path, records: int, number: int
) -> list[ToolRun]:
    """Produce ``records`` messages to a fresh topic with the tool, then consume them."""
    topic = f"{bench.topics.prefix}perf-{number}"
    create_topic(bench.settings, topic)
    servers = bench.settings.kafka.bootstrap_servers
    produced = _tool(
        libs,
        "ProducerPerformance",
        [
            "--bootstrap-server",
            servers,
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--throughput",
            "-1",
            "--payload-file",
            str(payloads),
            "--producer-props",
            *PRODUCER_PROPS,
        ],
        timeout=900,
    )
    consumed = _tool(
        libs,
        "ConsumerPerformance",
        [
            "--bootstrap-server",
            servers,
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--timeout",
            "120000",
        ],
        timeout=900,
    )
    return [parse_producer(produced), parse_consumer(consumed)]


def render(runs: Sequence[Sequence[ToolRun]], records: int, size: float, load: str) -> str:
    """The section: how, machine, one row per tool and round."""
    rows = [
        (
            number,
            run.tool,
            f"{run.messages_per_second:,.0f}",
            f"{run.megabytes_per_second:.1f}",
            f"{run.messages_per_second / 2:,.0f}",
        )
        for number, tools in enumerate(runs, 1)
        for run in tools
    ]
    lines = [
        SECTION,
        "",
        f"{written(COMMAND + f' --records {records} --rounds {len(runs)}')} Kafka's own Java"
        f" performance tools, {records:,} messages per round whose payloads are our encoded"
        f" predictions and labels alternating (mean {size:.0f} bytes), to a fresh topic of 4"
        f" partitions on the shared local broker; producer settings as `EventProducer`"
        f" ({', '.join(PRODUCER_PROPS)}); consumer rate excludes the group join. A pair is two"
        " messages (prediction + label), so pairs/s is half the message rate.",
        "",
        *machine(("confluent-kafka",), load),
        "- Kafka 4.3.1 (KRaft, one combined broker and controller, on the same machine)",
        "",
        *table(["round", "tool", "messages/s", "MB/s", "pairs/s"], rows, numeric="r.rrr"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the tools and publish the section."""
    options = parser("python -m bench.broker", __doc__)
    options.add_argument("--records", type=int, default=2_000_000, help="messages per round")
    options.add_argument("--rounds", type=int, default=2, help="rounds (fresh topic each)")
    args = options.parse_args(argv)
    if args.quick:
        args.records, args.rounds = 100_000, 1
    load_before = load_average()
    base = shared_services()
    libs = fetch_kafka_jars(base.services, say=progress)
    runs = []
    with bench_topics(base, "broker") as bench:
        payloads = bench.workdir / "payloads.txt"
        size = write_payloads(payloads, 5_000)
        for number in range(1, args.rounds + 1):
            progress(f"round {number}: {args.records:,} messages")
            runs.append(measure_round(bench, libs, payloads, args.records, number))
    publish(render(runs, args.records, size, load_before), args.output)


if __name__ == "__main__":
    main()
