"""The Kafka-native runtime's own machinery on the real broker: state values of several MB
through a changelog topic with the broker's default limits, a commit that keeps failing the
same way (an ERROR with its cause, a counter, exactly once once fixed), and ``driftstream worker
--processes N``."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from pipeline.partitioner import partition_for
from producers.simulator import ModelTraffic, simulate
from schemas.events import PredictionEvent
from stream_app.local.services.process import wait_until
from stream_app.runtimes.kafka.changelog import CHUNK_BYTES, ChangelogWriter, restore
from stream_app.runtimes.kafka.clock_watch import ClockWatch
from stream_app.runtimes.kafka.transactions import TransactionalProducer
from stream_app.settings import Settings
from stream_app.topics import Topics, app_id, ensure_topics, store_topics
from stream_app.worker_process import WorkerProcess
from tests.factories import poisson_traffic
from tests.integration.kafka_io import consume
from tests.pipeline import (
    Event,
    WorkerPool,
    alerts_of,
    labelled_requests,
    live_view,
    replayed_alerts,
    send,
    silences_when_idle,
    worker_env,
)


def at(event: PredictionEvent) -> datetime:
    return event.timestamp


def create_topic(settings: Settings, name: str, partitions: int, **config: str) -> None:
    admin = AdminClient(settings.kafka.client_config())
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result()


def test_state_values_of_several_mb_round_trip_through_a_changelog_topic(
    settings: Settings,
) -> None:
    """Default broker limits (max.message.bytes about 1 MiB): a 5 MB value goes as chunks, then
    shrinks, and a chunked value is deleted; the restore gives exactly the last values."""
    topic = f"{settings.topics.prefix}test-store"
    create_topic(settings, topic, 2, **{"cleanup.policy": "compact"})
    producer = TransactionalProducer(
        {
            **settings.kafka.client_config(),
            "transactional.id": f"test-{uuid.uuid4().hex[:8]}",
            "linger.ms": 5,
            "compression.type": "lz4",
        },
        stopping=lambda: False,
    )
    writer = ChangelogWriter(topic, producer.send)
    big, gone = os.urandom(5_000_000), os.urandom(3 * CHUNK_BYTES)
    writer.write(1, b"fraud/bank", big)
    writer.write(1, b"fraud/gone", gone)
    writer.write(1, b"fraud/detect", b"small")
    producer.commit()
    assert restore(settings.kafka, topic, [1])[1].values == {
        b"fraud/bank": big,
        b"fraud/gone": gone,
        b"fraud/detect": b"small",
    }

    producer.begin()
    smaller = os.urandom(2 * CHUNK_BYTES + 1)
    writer.write(1, b"fraud/bank", smaller)
    writer.write(1, b"fraud/gone", None)
    producer.commit()
    part = restore(settings.kafka, topic, [0, 1])[1]
    assert part.values == {b"fraud/bank": smaller, b"fraud/detect": b"small"}
    assert part.chunks == {b"fraud/bank": 3}

    records = consume(settings, [topic], expected=part.records)
    assert len(records) == part.records
    assert max(len(m.value() or b"") for m in records) <= CHUNK_BYTES


def traffic(predictions: int = 600) -> list[Event]:
    return list(
        simulate(
            [
                ModelTraffic("fraud", "abrupt", predictions, seed=11, drift_at=predictions // 2),
                ModelTraffic("stable", "stable", predictions, seed=12),
            ]
        )
    )


def exact(settings: Settings, events: list[Event]) -> Callable[[], bool]:
    """Whether Redis shows every model's counters and applied outcomes exactly."""
    models = {e.model_id for e in events if isinstance(e, PredictionEvent)}
    predictions = {
        m: sum(isinstance(e, PredictionEvent) and e.model_id == m for e in events) for m in models
    }
    labelled = {m: len(labelled_requests(events, m)) for m in models}

    def check() -> bool:
        view = live_view(settings)
        seen = {
            m: (
                int(view.get(m, {}).get("predictions", 0)),
                int(view.get(m, {}).get("joined", 0)),
                int(view.get(m, {}).get("outcomes_applied", 0)),
            )
            for m in models
        }
        want = {m: (predictions[m], labelled[m], labelled[m]) for m in models}
        assert all(s <= w for m in models for s, w in zip(seen[m], want[m], strict=True)), (
            f"counted more than sent: {seen} > {want}"
        )
        return seen == want

    return check


def committed_offsets(settings: Settings, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({**settings.kafka.client_config(), "group.id": app_id(settings)})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in consumer.committed(tps, timeout=30)]
    finally:
        consumer.close()


def test_a_commit_failing_the_same_way_is_an_error_and_exactly_once_once_fixed(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    """The detect store takes no record over 1,000 bytes: every transaction that writes
    detection state fails with MSG_SIZE_TOO_LARGE. The worker says so as an ERROR with the
    cause and the fix, counts ``stuck_commits`` and commits nothing of the detection stage;
    once the topic is fixed it goes on, every counter exact."""
    _join_store, detect_store = store_topics(app_id(settings))
    partitions = settings.topics.partitions
    create_topic(
        settings,
        detect_store,
        partitions,
        **{"cleanup.policy": "compact", "max.message.bytes": "1000"},
    )
    events = traffic()
    send(settings, topics, events)
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()

        def stuck() -> bool:
            assert worker.running, worker.log_tail()
            pipeline = live_view(settings).get("_pipeline", {})
            return int(pipeline.get("stuck_commits", 0)) >= 1

        assert wait_until(stuck, 120, interval=0.5), worker.log_tail(80)
        errors = [line for line in worker.log_tail(2000).splitlines() if "[ERROR]" in line]
        assert any(
            "transactions keep failing" in line
            and "MSG_SIZE_TOO_LARGE" in line
            and detect_store in line
            and "max.message.bytes" in line
            for line in errors
        ), "\n".join(errors) or worker.log_tail(80)
        # nothing of the detection stage committed: no observations offset, no model state
        assert committed_offsets(settings, topics.observations, partitions) == [-1001] * partitions
        assert "predictions_applied" not in live_view(settings).get("fraud", {})

        admin = AdminClient(settings.kafka.client_config())
        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            detect_store,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET
                )
            ],
        )
        admin.incremental_alter_configs([resource])[resource].result()

        def recovered() -> bool:
            assert worker.running, worker.log_tail()
            return exact(settings, events)()

        assert wait_until(recovered, 120, interval=0.5), (live_view(settings), worker.log_tail(40))
        assert "a transaction committed again" in worker.log_tail(2000)


def start_processes(settings: Settings, tmp_path: Path, n: int) -> WorkerProcess:
    """``driftstream worker --processes n`` as a terminal would run it: in a process group of
    its own, the group a Ctrl-C goes to."""
    env = worker_env(settings, tmp_path / "data")
    args = ["--processes", str(n)]
    return WorkerProcess(env, tmp_path / "workers.log", "info", args, own_group=True).start()


def children(parent: WorkerProcess, n: int) -> list[int]:
    """The pids of the worker processes the parent started (waits for its log lines)."""
    found: list[int] = []

    def started() -> bool:
        assert parent.running, parent.log_tail()
        found[:] = [
            int(p)
            for p in re.findall(
                r"started worker process \d+ of \d+ \(pid (\d+)\)", parent.log_tail(400)
            )
        ]
        return len(found) == n

    assert wait_until(started, 30), parent.log_tail()
    return found


def ready_lines(log_text: str, pid: int) -> list[int]:
    """The partition counts of every "worker ready" line of process ``pid``."""
    return [
        int(n)
        for n in re.findall(rf"\[{pid}\] \[INFO\] [\w.]+: worker ready: (\d+) partitions", log_text)
    ]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def two_partitions(make_settings: Callable[..., Settings]) -> tuple[Settings, Topics]:
    settings = make_settings(partitions=2)
    return settings, ensure_topics(settings.kafka, settings.topics)


def test_processes_2_share_the_partitions_counts_exact_one_ctrl_c_stops_both(
    two_partitions: tuple[Settings, Topics], tmp_path: Path
) -> None:
    settings, topics = two_partitions
    events = traffic()
    parent = start_processes(settings, tmp_path, 2)
    try:
        pids = children(parent, 2)
        send(settings, topics, events)
        assert wait_until(exact(settings, events), 120, interval=0.5), (
            live_view(settings),
            parent.log_tail(60),
        )
        log_text = parent.log_tail(5000)
        for pid in pids:  # each read its share: neither had it all in the end
            assert 0 < ready_lines(log_text, pid)[-1] < 10, (pid, log_text)
        assert parent.process is not None
        os.killpg(parent.process.pid, signal.SIGINT)  # Ctrl-C: to the terminal's process group
        assert parent.process.wait(90) == 0, parent.log_tail(40)
        assert all(gone(pid) for pid in pids)
        assert "[ERROR]" not in parent.log_tail(5000)
    finally:
        parent.kill()


def test_a_worker_process_that_dies_is_an_error_and_stops_the_others(
    two_partitions: tuple[Settings, Topics], tmp_path: Path
) -> None:
    settings, _topics = two_partitions
    parent = start_processes(settings, tmp_path, 2)
    try:
        doomed, other = children(parent, 2)
        assert wait_until(
            lambda: all(ready_lines(parent.log_tail(400), p) for p in (doomed, other)), 90
        ), parent.log_tail(60)
        os.kill(doomed, signal.SIGKILL)
        assert parent.process is not None
        assert parent.process.wait(90) == 1, parent.log_tail(40)
        log_text = parent.log_tail(400)
        assert re.search(
            rf"\[ERROR\] .*worker process 1 of 2 \(pid {doomed}\) exited with code -9", log_text
        ), log_text
        assert gone(other)
    finally:
        parent.kill()


def test_models_that_all_stop_are_silent_by_the_wall_clock_once_the_stream_is_idle(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    """Two models send for 150 s of event time, then both stop: no event time goes on, only the
    wall clock can tell. Once the worker has read everything (the broker says so) and their
    silence gap has passed, each model gets one silence alert: the one its bank would raise if
    event time went on (same id, same times)."""
    a, b = poisson_traffic("a", [(0, 150)], 10.0, seed=1), poisson_traffic("b", [(0, 150)], 5, 2)
    events = sorted([*a, *b], key=at)
    idle = silences_when_idle(settings, events)
    assert sorted(a.model_id for a in idle) == ["a", "b"]
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        send(settings, topics, events)
        alerts = alerts_of(consume(settings, [topics.alerts], expected=2, timeout=60))
        assert worker.running, worker.log_tail()
    assert sorted(alerts, key=lambda a: a.model_id) == sorted(idle, key=lambda a: a.model_id)


def test_the_stream_is_idle_only_once_the_group_read_every_input_to_its_end(
    settings: Settings, topics: Topics
) -> None:
    """What the broker says decides (not the last fetch): records the group has not committed
    past are no idle stream; once it has, it is."""
    send(settings, topics, poisson_traffic("a", [(0, 10)], 10.0, seed=3))
    group = f"idle-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({**settings.kafka.client_config(), "group.id": group})
    try:
        partitions = dict.fromkeys(topics.inputs, settings.topics.partitions)
        watch = ClockWatch(consumer, topics.inputs, partitions)
        assert not watch.idle(set(), {}), "nothing read yet"
        ends = [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p))[1])
            for topic in topics.inputs
            for p in range(settings.topics.partitions)
        ]
        consumer.commit(offsets=ends, asynchronous=False)
        assert watch.idle(set(), {})
    finally:
        consumer.close()


def test_a_model_alone_on_its_partition_stopping_while_another_sends_is_silent(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    """``alone`` (observations partition 3) stops at 150 s of event time while ``busy``
    (partition 1) sends on to 300 s: no clock of ``alone``'s partition goes on. The worker
    reads every partition, each to its end, so its partitions' clocks are one: ``alone`` is
    silent, the alert the replay (one stream) raises. No wall clock here."""
    worker_settings = settings.worker.model_copy(update={"wall_clock_silence": False})
    settings = settings.model_copy(update={"worker": worker_settings})
    partitions = settings.topics.partitions
    assert partition_for(b"alone", partitions) != partition_for(b"busy", partitions)
    alone = poisson_traffic("alone", [(0, 150)], 10.0, seed=4)
    events = sorted([*alone, *poisson_traffic("busy", [(0, 300)], 10.0, seed=5)], key=at)
    (expected,) = [a for a in replayed_alerts(settings, events) if a.model_id == "alone"]
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        send(settings, topics, events)
        alerts = alerts_of(consume(settings, [topics.alerts], expected=1, timeout=60))
        assert worker.running, worker.log_tail()
    assert alerts == [expected]
