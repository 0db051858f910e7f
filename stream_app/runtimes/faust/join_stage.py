"""The join processor's store in the Faust runtime: a view of one partition of a Faust table.

Faust writes a table change to the changelog partition of the event being processed, so an
entry may only be written or deleted while an event of its own partition is processed. The
:class:`~pipeline.join.JoinProcessor` keeps a buffer per partition (its own expiry index and
watermark); each buffer's store is a view of the shared table that tags every entry with its
partition, so after a restart or a rebalance the view finds its partition's entries again and
the buffer rebuilds its index from them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from pydantic import TypeAdapter

from detectors.join_buffer import JoinEntry

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
