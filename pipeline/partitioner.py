"""Kafka's default partitioner: which partition a key belongs on.

``murmur2`` is the hash of Kafka's Java clients (``Utils.murmur2``), of librdkafka's
``murmur2_random`` partitioner and of Kafka Streams, so a record keyed by ``request_id`` that any
of those wrote sits on :func:`partition_for` of its key. The worker places every input record by
it on its repartition topic, and (without the hop) checks the inputs against it.

>>> [murmur2(key) for key in (b"21", b"foobar", b"abc")]  # Kafka's own test vectors
[-973932308, -790332482, 479470107]
>>> partition_for(b"r-1", 6), partition_for(b"r-1", 1)
(5, 0)
"""

from __future__ import annotations

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """32-bit murmur2 with Kafka's seed, as a signed int (Java's ``Utils.murmur2``)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    tail = length - length % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` that Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
