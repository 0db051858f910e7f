"""What the Kafka-native worker needs of a broker's topics, and what is wrong with the ones there.

For operators who create topics themselves (``driftstream topics create|check``). The worker's
own topics are planned from the settings and from what the broker has (:func:`needed`), then
compared with it (:func:`problems`), each problem with the command that fixes it. Only
:func:`read_broker` and :func:`create_missing` talk to Kafka.

>>> from stream_app.settings import Settings
>>> settings = Settings()
>>> broker = {"driftstream.predictions": TopicState(6, 1, {}),
...           "driftstream.labels": TopicState(1, 1, {"retention.ms": "3600000"}),
...           "driftstream.worker-join-store": TopicState(4, 1, {"cleanup.policy": "delete"})}
>>> for problem in problems(settings, broker)[:3]:
...     print(problem.severity, problem.topic, "|", problem.wrong.split(":")[0])
warning driftstream.labels | retention 1.0 h
error driftstream.observations | missing
error driftstream.alerts | missing
>>> [p.wrong for p in problems(settings, broker) if p.topic.endswith("join-store")]
['4 partitions where 6 are needed', "not compacted: a store must keep each key's last value"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from stream_app.settings import Settings
from stream_app.topics import TopicError, Topics, create_topics, repartition_topics, store_topics

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicState:
    """A topic as the broker has it: partitions, the smallest replica count of any partition,
    and its configs."""

    partitions: int
    replication: int
    config: Mapping[str, str]


@dataclass(frozen=True)
class Needed:
    """A topic the worker needs: its partitions (None: any count) and whether it is a store."""

    name: str
    partitions: int | None
    compacted: bool

    @property
    def config(self) -> dict[str, str]:
        """The config it is created with."""
        return {"cleanup.policy": "compact" if self.compacted else "delete"}


@dataclass(frozen=True)
class Problem:
    """What is wrong with one topic and how to fix it; a warning does not stop the worker."""

    topic: str
    wrong: str
    fix: str
    severity: Literal["error", "warning"] = "error"


def app_id(settings: Settings) -> str:
    """The worker's consumer group, the prefix of its internal topics."""
    return settings.worker.app_id or f"{settings.topics.prefix}worker"


def needed(settings: Settings, broker: Mapping[str, TopicState]) -> list[Needed]:
    """The topics the worker of ``settings`` needs, sized from what ``broker`` has (a missing
    event topic counts as made with ``topics.partitions``)."""
    names, group = Topics(settings.topics.prefix), app_id(settings)

    def count(topic: str) -> int:
        return broker[topic].partitions if topic in broker else settings.topics.partitions

    topics = [Needed(name, None, False) for name in names.all()]
    join_topic = names.predictions
    if settings.join.repartition:
        moved = repartition_topics(group, names)
        made = [broker[t].partitions for t in moved.values() if t in broker]
        join_partitions = made[0] if made else max(count(t) for t in names.inputs)
        topics += [Needed(name, join_partitions, False) for name in moved.values()]
        join_topic = moved[names.predictions]
    else:
        join_partitions = count(join_topic)
    join_store, detect_store = store_topics(group)
    topics += [
        Needed(join_store, join_partitions, True),
        Needed(detect_store, count(names.observations), True),
    ]
    return topics


def problems(settings: Settings, broker: Mapping[str, TopicState]) -> list[Problem]:
    """Everything about ``broker``'s topics that keeps the worker from using them as they are
    (errors), or that may lose data (warnings)."""
    names, servers = Topics(settings.topics.prefix), settings.kafka.bootstrap_servers
    tool = f"--bootstrap-server {servers}"
    found: list[Problem] = []
    if not settings.join.repartition:
        inputs = {t: broker[t].partitions for t in names.inputs if t in broker}
        if len(set(inputs.values())) > 1:
            found.append(
                Problem(
                    " and ".join(inputs),
                    f"partition counts {sorted(inputs.values())} differ without the hop",
                    "set DRIFTSTREAM_JOIN__REPARTITION=true, or give both the same count "
                    f"(kafka-topics.sh {tool} --alter --topic T --partitions N)",
                )
            )
    outputs = {names.alerts, names.deadletter}  # their retention is their readers' business
    for topic in needed(settings, broker):
        state = broker.get(topic.name)
        if state is None:
            found.append(Problem(topic.name, "missing", "driftstream topics create"))
            continue
        found += _problems_of(topic, state, settings, tool, read=topic.name not in outputs)
    return found


def _problems_of(
    topic: Needed, state: TopicState, settings: Settings, tool: str, read: bool
) -> list[Problem]:
    name, found = topic.name, []
    configs = f"kafka-configs.sh {tool} --alter --entity-type topics --entity-name {name}"
    if topic.partitions is not None and state.partitions != topic.partitions:
        found.append(
            Problem(
                name,
                f"{state.partitions} partitions where {topic.partitions} are needed",
                f"kafka-topics.sh {tool} --delete --topic {name}, then driftstream topics create "
                "(a store or repartition topic has one partition per partition of its stream)",
            )
        )
    wanted = settings.topics.replication_factor
    if state.replication < wanted:
        found.append(
            Problem(
                name,
                f"replication {state.replication}, below topics.replication_factor {wanted}",
                f"kafka-reassign-partitions.sh {tool} --reassignment-json-file plan.json "
                f"--execute (plan.json: {wanted} replicas for each partition of {name})",
            )
        )
    policy = state.config.get("cleanup.policy", "delete")
    if topic.compacted and "compact" not in policy:
        found.append(
            Problem(
                name,
                "not compacted: a store must keep each key's last value",
                f"{configs} --add-config cleanup.policy=compact",
            )
        )
    elif not topic.compacted and "compact" in policy:
        found.append(
            Problem(
                name,
                f"cleanup.policy {policy}: compaction would drop events that share a key",
                f"{configs} --add-config cleanup.policy=delete",
            )
        )
    retention = int(state.config.get("retention.ms", "-1"))
    if read and not topic.compacted and 0 <= retention < DAY_MS:
        found.append(
            Problem(
                name,
                f"retention {retention / 3_600_000:.1f} h: records not read within it are lost "
                "while the worker is down",
                f"{configs} --add-config retention.ms={7 * DAY_MS}",
                "warning",
            )
        )
    return found


def read_broker(settings: Settings, timeout: float = 10.0) -> dict[str, TopicState]:
    """The broker's topics named like the worker's (the topic prefix or ``<app id>-``), with
    their configs; :class:`TopicError` if the broker does not answer."""
    quiet: dict[str, Any] = {"log_level": 0, "error_cb": lambda _error: None}
    admin = AdminClient({**settings.kafka.client_config(), **quiet})
    prefixes = (settings.topics.prefix, f"{app_id(settings)}-")
    try:
        metadata = admin.list_topics(timeout=timeout)
        ours = {n: t for n, t in metadata.topics.items() if n.startswith(prefixes)}
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in ours]
        configs = admin.describe_configs(resources, request_timeout=timeout) if resources else {}
        settled = {r.name: {k: c.value for k, c in f.result().items()} for r, f in configs.items()}
    except KafkaException as exc:
        servers = settings.kafka.bootstrap_servers
        raise TopicError(f"Kafka at {servers} did not answer: {exc}") from exc
    return {
        name: TopicState(
            len(topic.partitions),
            min((len(p.replicas) for p in topic.partitions.values()), default=0),
            {k: v for k, v in settled[name].items() if v is not None},
        )
        for name, topic in ours.items()
    }


def create_missing(settings: Settings, broker: Mapping[str, TopicState]) -> dict[str, TopicState]:
    """Create the topics of :func:`needed` that ``broker`` lacks (one of any count with
    ``topics.partitions``); return them as made."""
    replication = settings.topics.replication_factor
    missing = [t for t in needed(settings, broker) if t.name not in broker]
    made: dict[str, TopicState] = {}
    for compacted in (False, True):
        group = [t for t in missing if t.compacted is compacted]
        if group:
            config = group[0].config
            wanted = {t.name: t.partitions or settings.topics.partitions for t in group}
            counts = create_topics(settings.kafka, wanted, replication, config)
            made |= {name: TopicState(n, replication, config) for name, n in counts.items()}
    return made
