"""The local services answer, and round-trip data through real Kafka and Redis."""

from __future__ import annotations

import redis
from confluent_kafka import Consumer, Producer

from stream_app.local.services import services_status, services_up
from stream_app.settings import Settings
from stream_app.topics import Topics
from tests.integration.kafka_io import consume


def test_up_again_is_a_no_op(services: Settings) -> None:
    statuses = services_up(services, say=lambda _m: None)
    assert [s.state for s in statuses] != ["started", "started"]
    assert all(s.state in ("ours, already running", "external, reused") for s in statuses)
    assert all(s.state.startswith("up") for s in services_status(services))


def test_kafka_round_trip(settings: Settings, topics: Topics) -> None:
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(50)}
    producer = Producer(settings.kafka.client_config())
    for key, value in sent.items():
        producer.produce(topics.predictions, key=key, value=value)
    assert producer.flush(30) == 0
    received = consume(settings, [topics.predictions], expected=len(sent))
    assert {m.key(): m.value() for m in received} == sent


def test_topics_are_co_partitioned(settings: Settings, topics: Topics) -> None:
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "metadata-probe"})
    metadata = consumer.list_topics(timeout=10).topics
    consumer.close()
    assert set(topics.all()) <= set(metadata)
    counts = {len(metadata[name].partitions) for name in (topics.predictions, topics.labels)}
    assert counts == {settings.topics.partitions}


def test_redis_round_trip(settings: Settings, redis_conn: redis.Redis) -> None:
    key = f"{settings.redis.key_prefix}probe"
    redis_conn.hset(key, mapping={"predictions": 3, "status": "ok"})
    assert redis_conn.hgetall(key) == {b"predictions": b"3", b"status": b"ok"}
