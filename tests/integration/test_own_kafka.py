"""The Kafka-native worker on topics and producers as users have them: a worker started before
its topics exist, inputs of six partitions written by producers with different partitioners, a
backlog on uneven partitions, a backlog read in runs per partition, and inputs read without
the repartition hop (records off their partition are counted)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from pipeline.partitioner import partition_for
from producers.simulator import ModelTraffic, simulate
from schemas.codec import encode
from schemas.events import LabelEvent, PredictionEvent
from stream_app.cli import app
from stream_app.local.services.process import wait_until
from stream_app.settings import Settings
from stream_app.topics import Topics, partition_counts, repartition_topics
from tests.integration.kafka_io import topic_size
from tests.pipeline import (
    WorkerPool,
    alert_facts,
    beside_silences,
    labelled_requests,
    live_view,
    published_alerts,
    replayed_alerts,
    silences_when_idle,
    wait_for_joined,
    worker_ready,
)

Event = PredictionEvent | LabelEvent


def traffic() -> list[Event]:
    return list(
        simulate(
            [
                ModelTraffic("fraud", "abrupt", 2000, seed=7, drift_at=1000),
                ModelTraffic("stable", "stable", 2000, seed=8),
            ]
        )
    )


def produce(settings: Settings, events: list[Event], partitioners: tuple[str, str]) -> Counter[str]:
    """Write ``events`` in their order, keyed by request id, with two plain librdkafka
    producers: predictions by ``partitioners[0]``, labels by ``partitioners[1]``. Per side, how
    many records landed off the partition Kafka's default partitioner gives their key."""
    names = Topics(settings.topics.prefix)
    counts = partition_counts(settings.kafka)
    off: Counter[str] = Counter()

    def delivered(error: KafkaError | None, message: Message) -> None:
        assert error is None, error
        topic = message.topic()
        assert topic is not None
        if message.partition() != partition_for(message.key() or b"", counts[topic]):
            off[topic] += 1

    config = settings.kafka.client_config()
    producers = [Producer({**config, "partitioner": p}) for p in partitioners]
    for event in events:
        side = 0 if isinstance(event, PredictionEvent) else 1
        topic = names.labels if side else names.predictions
        key = event.request_id.encode()
        producers[side].produce(topic, encode(event), key, on_delivery=delivered)
        producers[side].poll(0)
    for producer in producers:
        assert producer.flush(60) == 0
    return Counter({"predictions": off[names.predictions], "labels": off[names.labels]})


def create_inputs(settings: Settings, partitions: int, labels: int | None = None) -> Topics:
    """The input topics made with Kafka's admin API, as an operator would (not our helper):
    ``partitions`` each, or ``labels`` partitions for the labels."""
    names = Topics(settings.topics.prefix)
    admin = AdminClient(settings.kafka.client_config())
    counts = {names.predictions: partitions, names.labels: labels or partitions}
    new = [NewTopic(name, n, 1) for name, n in counts.items()]
    for future in admin.create_topics(new).values():
        future.result()
    return names


def expected_joins(events: list[Event]) -> dict[str, int]:
    return {m: len(labelled_requests(events, m)) for m in ("fraud", "stable")}


def joined_as_replayed(settings: Settings, view: dict[str, Any], events: list[Event]) -> str:
    """Assert every labelled request joined, none reached the detectors out of event-time
    order, and the alerts are the replay's (ids, event and detection times); what was seen."""
    joined = {m: int(view[m]["joined"]) for m in ("fraud", "stable")}
    assert joined == expected_joins(events)
    assert {m: int(view[m].get("late_observations", 0)) for m in joined} == dict.fromkeys(joined, 0)
    alerts = published_alerts(settings)
    replayed = replayed_alerts(settings, events)
    alerts, replayed = beside_silences(alerts, replayed, silences_when_idle(settings, events))
    assert alert_facts(alerts) == alert_facts(replayed)
    return f"joined {joined}, 0 late, {len(alerts)} alerts as replayed"


def test_worker_started_before_its_topics_exist(settings: Settings, tmp_path: Path) -> None:
    names = Topics(settings.topics.prefix)
    assert names.predictions not in partition_counts(settings.kafka)
    events = traffic()
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        assert wait_until(lambda: worker_ready(worker.log_tail()), 90), worker.log_tail()
        counts = partition_counts(settings.kafka)
        app_id = f"{names.prefix}worker"
        internal = [*repartition_topics(app_id, names).values(), f"{app_id}-join-store"]
        for topic in [*names.all(), *internal]:
            assert counts[topic] == settings.topics.partitions, (topic, counts.get(topic))
        produce(settings, events, ("consistent_random", "consistent_random"))
        view = wait_for_joined(settings, worker, expected_joins(events))
    print(f"worker first: {joined_as_replayed(settings, view, events)}")


def test_six_partitions_and_two_partitioners(settings: Settings, tmp_path: Path) -> None:
    """Predictions by librdkafka's default partitioner (CRC32), labels by the Java one
    (murmur2): the route puts both sides of each request on one join partition; one worker
    holds them all, so nothing goes through the repartition topics."""
    names = create_inputs(settings, 6)
    events = traffic()
    off = produce(settings, events, ("consistent_random", "murmur2_random"))
    assert off == Counter(predictions=off["predictions"]), "murmur2_random is Kafka's default"
    assert off["predictions"] > 2000, "CRC32 puts most keys elsewhere than murmur2 does"
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        view = wait_for_joined(settings, worker, expected_joins(events))
    app_id = f"{names.prefix}worker"
    counts = partition_counts(settings.kafka)
    moved = repartition_topics(app_id, names).values()
    assert [counts[t] for t in moved] == [6, 6]
    assert [topic_size(settings, t) for t in moved] == [0, 0], "joined in the worker's process"
    assert "wrong_partition" not in view["_pipeline"]
    print(f"6 partitions, CRC32 and murmur2: {joined_as_replayed(settings, view, events)}")


def test_backlog_on_uneven_partitions_alerts_as_the_replay(
    settings: Settings, tmp_path: Path
) -> None:
    """The whole stream waits before the worker starts, predictions on 6 partitions, labels on
    1: the join and the detectors still see it in event-time order."""
    create_inputs(settings, 6, labels=1)
    events = traffic()
    produce(settings, events, ("consistent_random", "murmur2_random"))
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        view = wait_for_joined(settings, worker, expected_joins(events))
    print(f"backlog on 6 + 1 partitions: {joined_as_replayed(settings, view, events)}")


def test_a_backlog_read_in_runs_per_partition_reaches_the_detectors_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    """Under a backlog the consumer hands out records in runs per partition, a fetch's worth
    each, so a partition runs ahead in event time of the others (labels, small records, seconds
    ahead of the predictions with every fetch). The merge holds them, but no more than
    ``max_held_records``: a partition holding more than its share is not fetched until the
    others catch up, so nothing is let go out of order. The bound and the batches are small
    here, so that this stream's one fetch is more than the bound; 16 partitions a topic, so
    that the partitions' shares must leave room for the fetches (a tenth of the bound each
    did not)."""
    worker = settings.worker.model_copy(update={"batch_size": 25, "max_held_records": 3_000})
    settings = settings.model_copy(update={"worker": worker})
    create_inputs(settings, 16)
    events = traffic()
    produce(settings, events, ("murmur2_random", "murmur2_random"))
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        view = wait_for_joined(settings, pool.start(), expected_joins(events))
    print(f"a backlog in runs: {joined_as_replayed(settings, view, events)}")


def test_without_the_hop_records_off_their_partition_are_counted(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"join": settings.join.model_copy(update={"repartition": False})}
    )
    create_inputs(settings, 6)
    events = traffic()
    misplaced = produce(settings, events, ("murmur2_random", "consistent_random"))
    assert misplaced["predictions"] == 0, "our murmur2 is librdkafka's"
    off = misplaced["labels"]
    assert off > 0
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()

        def counted() -> bool:
            assert worker.running, worker.log_tail()
            return int(live_view(settings)["_pipeline"].get("wrong_partition", 0)) >= off

        assert wait_until(counted, 120, interval=0.5), live_view(settings)["_pipeline"]
        log_text = worker.log_tail(400)
    view = live_view(settings)
    joined = sum(int(view[m].get("joined", 0)) for m in ("fraud", "stable"))
    print(f"no hop, labels by CRC32: {off} off their partition, joined {joined}")
    assert int(view["_pipeline"]["wrong_partition"]) == off
    assert joined < sum(expected_joins(events).values())
    assert "on the wrong partition" in log_text
    assert "join.repartition true" in log_text


def test_a_topic_deleted_under_the_worker_is_an_error_it_shows(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The labels topic deleted while the worker reads it: the worker logs that it cannot read
    it, counts ``unreadable_topic`` and ``driftstream state`` prints a problem line."""
    names = Topics(settings.topics.prefix)
    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        assert wait_until(lambda: worker_ready(worker.log_tail()), 90), worker.log_tail()
        admin = AdminClient(settings.kafka.client_config())
        admin.delete_topics([names.labels])[names.labels].result()

        def counted() -> bool:
            assert worker.running, worker.log_tail()
            pipeline = live_view(settings).get("_pipeline", {})
            return int(pipeline.get("unreadable_topic", 0)) >= 1

        assert wait_until(counted, 120, interval=0.5), worker.log_tail()
        log_text = worker.log_tail(400)
    assert any(
        "ERROR" in line and "cannot read" in line and names.labels in line
        for line in log_text.splitlines()
    ), log_text
    monkeypatch.setenv("DRIFTSTREAM_REDIS__KEY_PREFIX", settings.redis.key_prefix)
    result = CliRunner().invoke(app, ["state"], env={"COLUMNS": "200"})
    assert "problem:" in result.output
    assert "reads refused: a topic missing or not allowed" in result.output


def wide_and_many(models: int, features: int, requests: int) -> list[Event]:
    """A model of ``features`` numeric features and ``models`` small models, every request
    labelled two seconds after its prediction (requests interleaved over the models)."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(5)
    events: list[Event] = []
    for i in range(requests):
        model = "wide" if i % 2 else f"m{i % models:04d}"
        width = features if model == "wide" else 3
        at = t0 + timedelta(milliseconds=20 * i)
        features_of = {f"f{j:04d}": rng.gauss(0, 1) for j in range(width)}
        events.append(
            PredictionEvent(
                request_id=f"r{i}",
                model_id=model,
                model_version="1",
                timestamp=at,
                features=features_of,
                prediction="a",
                score=rng.random(),
            )
        )
        label = "a" if rng.random() < 0.9 else "b"
        at += timedelta(seconds=2)
        events.append(LabelEvent(request_id=f"r{i}", model_id=model, timestamp=at, label=label))
    return sorted(events, key=lambda event: event.timestamp)


def test_a_wide_model_and_many_models_apply_exactly_and_restore(
    settings: Settings, tmp_path: Path
) -> None:
    """A model of 1,000 features (every feature tracked: about 3,000 signals, a detection state
    of several MB) and 200 small models, written by a plain librdkafka producer into topics the
    worker did not create: every prediction and outcome applied, the counts exact, and a
    restarted worker restores them all and goes on."""
    settings = settings.model_copy(
        update={
            "detectors": settings.detectors.model_copy(
                update={"models": {"wide": {"max_feature_signals": 1000}}}
            )
        }
    )
    create_inputs(settings, 2)
    events = wide_and_many(models=200, features=1000, requests=1200)
    first, second = events[:1200], events[1200:]
    produce(settings, first, ("consistent_random", "murmur2_random"))
    expected = Counter(e.model_id for e in events if isinstance(e, LabelEvent))

    def applied(view: dict[str, Any], half: list[Event]) -> bool:
        labelled = Counter(e.model_id for e in half if isinstance(e, LabelEvent))
        return all(
            int(view.get(m, {}).get("outcomes_applied", 0)) >= n for m, n in labelled.items()
        )

    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        assert wait_until(lambda: applied(live_view(settings), first), 180, interval=1), (
            worker.log_tail()
        )
        worker.stop()
        restarted = pool.start()
        produce(settings, second, ("consistent_random", "murmur2_random"))
        assert wait_until(lambda: applied(live_view(settings), events), 180, interval=1), (
            restarted.log_tail()
        )
        log_text = worker.log_tail(400) + restarted.log_tail(400)
    view = live_view(settings)
    assert {m: int(view[m]["outcomes_applied"]) for m in expected} == dict(expected)
    assert {m: int(view[m]["predictions_applied"]) for m in expected} == dict(expected)
    assert int(view["wide"]["joined"]) == expected["wide"] == 600
    assert "ERROR" not in log_text, log_text
    signals = len(view["wide"].get("signals", {}))
    print(f"1,000 features ({signals} signals) and 200 models: exact across a restart")
