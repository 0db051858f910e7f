"""The join core over a Faust table: one :class:`~detectors.join.JoinBuffer` per partition.

Faust writes a table change to the changelog partition of the event being processed, so an
entry may only be written or deleted while an event of its own partition is processed. Each
partition therefore gets its own buffer (its own expiry index and watermark) over a view of the
shared table that tags every entry with its partition; after a restart or a rebalance the view
finds its partition's entries again and the buffer rebuilds its index from them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from pydantic import TypeAdapter

from detectors.join import JoinBuffer, JoinEntry
from stream_app.settings import JoinSettings

_TAGGED_ENTRY = TypeAdapter(tuple[int, JoinEntry])
"""Table values are JSON ``[partition, entry]``: unlike pickle, reading a changelog record can
never run code."""


class PartitionView(MutableMapping[str, JoinEntry]):
    """The entries of one partition in a bytes table of ``request_id -> [partition, entry]``."""

    def __init__(self, table: MutableMapping[bytes, bytes], partition: int) -> None:
        self.table = table
        self.partition = partition

    def __getitem__(self, key: str) -> JoinEntry:
        partition, entry = _TAGGED_ENTRY.validate_json(self.table[key.encode()])
        if partition != self.partition:
            raise KeyError(key)
        return entry

    def __setitem__(self, key: str, entry: JoinEntry) -> None:
        self.table[key.encode()] = _TAGGED_ENTRY.dump_json((self.partition, entry))

    def __delitem__(self, key: str) -> None:
        if key not in self:  # absent, or another partition's entry
            raise KeyError(key)
        del self.table[key.encode()]

    def __iter__(self) -> Iterator[str]:
        tag = b"[%d," % self.partition
        items = list(self.table.items())
        return (key.decode() for key, value in items if value.startswith(tag))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class PartitionedJoin:
    """Join buffers by partition, created (and rebuilt from the table) on first use."""

    def __init__(self, table: MutableMapping[bytes, bytes], settings: JoinSettings) -> None:
        self.table = table
        self.settings = settings
        self.buffers: dict[int, JoinBuffer] = {}
        self._evicted_before_forget = 0
        self._evicted_reported = 0

    def buffer(self, partition: int) -> JoinBuffer:
        buffer = self.buffers.get(partition)
        if buffer is None:
            buffer = JoinBuffer(
                PartitionView(self.table, partition),
                ttl_seconds=self.settings.ttl_seconds,
                max_pending=self.settings.max_pending,
            )
            buffer.rebuild_index()
            self.buffers[partition] = buffer
        return buffer

    def forget(self, partitions: set[int]) -> None:
        """Drop the buffers of revoked partitions; they are rebuilt if assigned again."""
        for partition in partitions:
            if (buffer := self.buffers.pop(partition, None)) is not None:
                self._evicted_before_forget += buffer.counts.evicted

    def take_evicted(self) -> int:
        """Entries evicted by the cap since the last call."""
        total = self._evicted_before_forget + sum(b.counts.evicted for b in self.buffers.values())
        new, self._evicted_reported = total - self._evicted_reported, total
        return new
