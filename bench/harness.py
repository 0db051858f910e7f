"""The streaming benchmarks' bench: their own topics on the shared broker, pre-loading, the real
worker as a child process, and reading back what it wrote.

Every :func:`bench_topics` block gets a fresh prefix (``bench-<id>-<name>.``) for its topics,
its worker's app id (so changelog topics too) and its Redis keys, and deletes exactly
those when it ends; the shared Kafka and Redis are never restarted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.results import progress
from bench.traffic import Request
from producers.kafka_producer import EventProducer
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.reader import read_live_state
from stream_app.local.services import services_up
from stream_app.preflight import redis_client
from stream_app.settings import Engine, Settings, TopicSettings
from stream_app.topics import Topics, ensure_topics
from stream_app.worker_process import WorkerProcess

PROGRESS_EVERY = 200_000
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Bench:
    """One benchmark's topics, settings and scratch folder."""

    settings: Settings
    topics: Topics
    workdir: Path

    def worker(
        self, name: str, engine: Engine = "kafka", args: Sequence[str] = (), **env: str
    ) -> WorkerProcess:
        """A worker of ``engine`` on these topics (not started), app id ``<prefix><name>``,
        Redis keys of its own (:meth:`keys`); ``args`` go to ``driftstream worker``
        (``--processes 2``), ``env`` adds ``DRIFTSTREAM_*`` overrides."""
        return WorkerProcess(
            {
                "DRIFTSTREAM_WORKER__ENGINE": engine,
                "DRIFTSTREAM_TOPICS__PREFIX": self.topics.prefix,
                "DRIFTSTREAM_TOPICS__PARTITIONS": str(self.settings.topics.partitions),
                "DRIFTSTREAM_REDIS__KEY_PREFIX": self.keys(name).prefix,
                "DRIFTSTREAM_WORKER__APP_ID": f"{self.topics.prefix}{name}",
                "DRIFTSTREAM_WORKER__DATA_DIR": str(self.workdir / name),
                "DRIFTSTREAM_WORKER__METRICS_PORT": "0",  # no Prometheus endpoint
                "WEB_PORT": str(_free_port()),  # Faust's web server, which its CLI turns on
                **env,
            },
            self.workdir / f"{name}.log",
            args=args,
        )

    def keys(self, worker: str) -> LiveStateKeys:
        """The Redis keys of the worker named ``worker`` (under the bench's prefix)."""
        return LiveStateKeys(f"{self.settings.redis.key_prefix}{worker}:")

    def live_view(self, worker: str = "worker") -> dict[str, dict[str, Any]]:
        """A worker's Redis view of every model (see ``stream_app.live_state``)."""
        with redis_client(self.settings.redis, decode_responses=True) as client:
            return read_live_state(client, self.keys(worker))

    def counter(self, name: str, worker: str = "worker") -> int:
        """A counter of the model hashes (``predictions``, ``joined``, ...), summed over models."""
        view = self.live_view(worker)
        return sum(int(m.get(name, 0)) for model_id, m in view.items() if model_id != "_pipeline")

    def signal_count(self, signal: str, worker: str = "worker") -> int:
        """Values the detection stage has taken of ``signal``, summed over models."""
        view = self.live_view(worker)
        return sum(
            int(model["signals"][signal]["n"])
            for model_id, model in view.items()
            if model_id != "_pipeline" and signal in model.get("signals", {})
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shared_services() -> Settings:
    """The configured Kafka and Redis, started if nothing answers (reused if running)."""
    settings = Settings()
    services_up(settings, say=progress)
    return settings


@contextmanager
def bench_topics(base: Settings, name: str) -> Iterator[Bench]:
    """Topics, Redis prefix and scratch folder of one benchmark run; all removed afterwards."""
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped benchmark still cleans up
    prefix = f"bench-{uuid.uuid4().hex[:6]}-{name}."
    settings = base.model_copy(
        update={
            "topics": TopicSettings(prefix=prefix, partitions=base.topics.partitions),
            "redis": base.redis.model_copy(update={"key_prefix": f"{prefix}driftstream:"}),
        }
    )
    topics = ensure_topics(settings.kafka, settings.topics)
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
            yield Bench(settings, topics, Path(workdir))
    finally:
        _delete_ours(settings, prefix)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _delete_ours(settings: Settings, prefix: str) -> None:
    admin = AdminClient(settings.kafka.client_config())
    ours = [t for t in admin.list_topics(timeout=30).topics if t.startswith(prefix)]
    if ours:
        for future in admin.delete_topics(ours, operation_timeout=60).values():
            future.result()
    with redis_client(settings.redis) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def preload(
    bench: Bench, requests: Iterable[Request], *, predictions: bool = True, labels: bool = True
) -> int:
    """Write the requests' predictions and/or labels to the input topics; the request count."""
    count = 0
    with EventProducer(bench.settings.kafka, bench.topics) as producer:
        for count, request in enumerate(requests, 1):
            if predictions:
                producer.send_encoded(bench.topics.predictions, request.key, request.prediction)
            if labels:
                producer.send_encoded(bench.topics.labels, request.key, request.label)
            if count % PROGRESS_EVERY == 0:
                progress(f"pre-loaded {count:,} requests")
    return count


def _reader(settings: Settings) -> Consumer:
    return Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]


TAIL = 64
"""Offsets read before a partition's end to find its last message: a transactional writer's
commit markers take offsets too, and are no messages."""


def time_bounds(settings: Settings, topic: str) -> tuple[float, float] | None:
    """Kafka timestamps (epoch seconds) of the earliest first and latest last message."""
    consumer = _reader(settings)
    firsts: list[float] = []
    lasts: list[float] = []
    try:
        for partition in _partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(partition, timeout=30)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition.partition, low)])
            firsts.append(_next_message(consumer).timestamp()[1] / 1000)
            consumer.assign([TopicPartition(topic, partition.partition, max(low, high - TAIL))])
            last = _next_message(consumer)
            while (last.offset() or 0) < high - 1 and (more := consumer.poll(1.0)) is not None:
                if more.error() is None:
                    last = more
            lasts.append(last.timestamp()[1] / 1000)
    finally:
        consumer.close()
    return (min(firsts), max(lasts)) if firsts else None


def _next_message(consumer: Consumer, timeout: float = 30.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            return message
    raise TimeoutError("no message where the watermarks said there is one")


def read_topic(settings: Settings, topic: str) -> list[Message]:
    """Every message of ``topic`` up to its current end."""
    consumer = _reader(settings)
    received: list[Message] = []
    try:
        ends = {}
        for partition in _partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(partition, timeout=30)
            if high > low:
                ends[partition.partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + 300
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    received.append(message)
            # by position, not by the last message's offset: commit markers take offsets too
            for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
    finally:
        consumer.close()
    return received


def kcat_preload(bench: Bench, requests: Iterable[Request], name: str) -> int:
    """Write the requests' predictions, then their labels, to the input topics with ``kcat``
    (an outside client, librdkafka's ``murmur2_random`` partitioner: Kafka's default by key),
    from files of ``request id<TAB>event`` lines; the request count."""
    kcat = shutil.which("kcat")
    if kcat is None:
        raise SystemExit("this benchmark needs kcat (Debian: apt-get install kcat)")
    topics = bench.topics
    files = {
        topics.predictions: bench.workdir / "predictions",
        topics.labels: bench.workdir / "labels",
    }
    count = 0
    with (
        files[topics.predictions].open("wb") as predictions,
        files[topics.labels].open("wb") as labels,
    ):
        for request in requests:
            predictions.write(request.key + b"\t" + request.prediction + b"\n")
            labels.write(request.key + b"\t" + request.label + b"\n")
            count += 1
    for topic, path in files.items():
        with path.open("rb") as lines:
            subprocess.run(
                [
                    kcat,
                    "-P",
                    "-b",
                    bench.settings.kafka.bootstrap_servers,
                    "-t",
                    topic,
                    "-K",
                    "\t",
                    "-z",
                    "lz4",
                    "-X",
                    "partitioner=murmur2_random",
                ],
                stdin=lines,
                check=True,
            )
        progress(f"{name}: kcat wrote {count:,} records to {topic}")
    return count


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and of its running children (a worker of
    ``--processes N`` and the workers it started), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def create_topic(settings: Settings, name: str) -> None:
    """Create one more topic with the configured partitions (for a benchmark's own output)."""
    admin = AdminClient(settings.kafka.client_config())
    topic = NewTopic(name, settings.topics.partitions, settings.topics.replication_factor)
    admin.create_topics([topic], operation_timeout=30)[name].result()
