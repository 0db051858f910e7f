"""State a processor keeps per partition, with the writes a runtime must make durable.

A :class:`ChangeTrackingStore` is a ``dict`` that remembers which keys were written or deleted
since the last :meth:`~ChangeTrackingStore.take_changes`: the state writes of a batch (last
value per key, ``None`` for a deletion). The Kafka-native runtime sends them to a compacted
changelog topic in the same transaction as the batch's outputs and input offsets, and fills a
new store from that changelog when a partition is assigned to it.

>>> store = ChangeTrackingStore({"a": 1})
>>> store["b"] = 2; store["a"] = 3; del store["b"]
>>> sorted(store.take_changes().items()), store.take_changes(), dict(store)
([('a', 3), ('b', None)], {}, {'a': 3})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import TypeVar

V = TypeVar("V")


class ChangeTrackingStore(MutableMapping[str, V]):
    """A ``dict`` of ``str -> V`` that records the keys changed since the last call of
    :meth:`take_changes`."""

    def __init__(self, items: Iterable[tuple[str, V]] | dict[str, V] = ()) -> None:
        self._data: dict[str, V] = dict(items)
        self._changed: set[str] = set()

    def __getitem__(self, key: str) -> V:
        return self._data[key]

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        return self._data.get(key, default)  # the join's hot path: skip MutableMapping's

    def __setitem__(self, key: str, value: V) -> None:
        self._data[key] = value
        self._changed.add(key)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed.add(key)

    def pop(self, key: str, *default: V) -> V:  # type: ignore[override]
        value = self._data.pop(key, *default)
        self._changed.add(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def take_changes(self) -> dict[str, V | None]:
        """The latest value of every key changed since the last call (None: deleted)."""
        changes = {key: self._data.get(key) for key in self._changed}
        self._changed.clear()
        return changes
