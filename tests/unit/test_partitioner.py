"""Kafka's default partitioner, and the join's check of inputs read without the hop."""

from __future__ import annotations

import random

from pipeline.effects import Effects, InputRecord, PartitionTag
from pipeline.join import JoinProcessor
from pipeline.partitioner import MANY_KEYS, murmur2, partition_for, partitions_for
from schemas.codec import encode
from tests.factories import T0, label, prediction

JAVA_VECTORS = {  # org.apache.kafka.common.utils.UtilsTest.testMurmur2
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_is_javas() -> None:
    assert {key: murmur2(key) for key in JAVA_VECTORS} == JAVA_VECTORS


def test_partitions_cover_the_range() -> None:
    keys = [f"r-{i}".encode() for i in range(6000)]
    placed = {partition_for(key, 6) for key in keys}
    assert placed == set(range(6))


def test_keys_hashed_together_go_where_each_alone_goes() -> None:
    """Every length's tail (0 to 3 bytes past a multiple of 4), each hashed as arrays; the
    Java vectors among them, and a length with too few keys for arrays."""
    rng = random.Random(5)
    keys = [
        bytes(rng.randrange(256) for _ in range(length))
        for length in range(13)
        for _ in range(MANY_KEYS)
    ]
    keys += [key for key in JAVA_VECTORS for _ in range(MANY_KEYS)] + [b"odd one out"]
    for partitions in (1, 4, 6, 7, 1_000):
        assert partitions_for(keys, partitions) == [partition_for(k, partitions) for k in keys]


def test_records_off_their_partition_are_counted_and_still_joined() -> None:
    join = JoinProcessor(
        "predictions",
        ttl_seconds=600,
        max_pending=100,
        max_future_seconds=1e9,
        input_partitions={"predictions": 6, "labels": 6},
    )
    effects = Effects()
    home = partition_for(b"r1", 6)
    elsewhere = (home + 1) % 6
    for topic, partition, event in [
        ("predictions", home, prediction("r1")),
        ("labels", elsewhere, label("r1")),
        ("labels", home, label("r1")),
    ]:
        record = InputRecord(topic, partition, 0, b"r1", encode(event))
        join.process(record, effects, now=T0)
    wrong = {
        source: n for (_m, name, source), n in effects.counts.items() if name == "wrong_partition"
    }
    assert wrong == {PartitionTag.of_input(elsewhere): 1}
    joined = sum(n for (_m, name, _s), n in effects.counts.items() if name == "joined")
    assert joined == 1  # on its home partition; the stray label found no prediction
