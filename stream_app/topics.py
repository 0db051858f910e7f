"""The public topics (names from the design) and their creation on the broker."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from stream_app.settings import KafkaSettings, TopicSettings


@dataclass(frozen=True)
class Topics:
    """Full topic names for one prefix."""

    prefix: str

    @property
    def predictions(self) -> str:
        return f"{self.prefix}predictions"

    @property
    def labels(self) -> str:
        return f"{self.prefix}labels"

    @property
    def observations(self) -> str:
        return f"{self.prefix}observations"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}deadletter"

    def all(self) -> list[str]:
        return [self.predictions, self.labels, self.observations, self.alerts, self.deadletter]


def ensure_topics(kafka: KafkaSettings, topics: TopicSettings, timeout: float = 30.0) -> Topics:
    """Create every public topic that does not exist yet, all with the configured partitions.

    Predictions and labels must be co-partitioned for the join, so an existing pair with
    different partition counts is an error, not something to paper over.
    """
    names = Topics(topics.prefix)
    admin = AdminClient(kafka.client_config())
    existing = admin.list_topics(timeout=timeout).topics
    missing = [
        NewTopic(name, num_partitions=topics.partitions,
                 replication_factor=topics.replication_factor)
        for name in names.all() if name not in existing
    ]  # fmt: skip
    for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc
    metadata = admin.list_topics(timeout=timeout).topics
    counts = {len(metadata[n].partitions) for n in (names.predictions, names.labels)}
    if len(counts) != 1:
        raise RuntimeError(
            f"{names.predictions} and {names.labels} have different partition counts {counts}; "
            "the join needs them co-partitioned"
        )
    return names
