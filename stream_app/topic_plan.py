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
from stream_app.topics import (
    TopicError,
    Topics,
    app_id,
    create_topics,
    partition_counts,
    repartition_topics,
    store_topics,
)

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
    names, tool, topics = Topics(settings.topics.prefix), _tool(settings), needed(settings, broker)
    found = layout_problems(settings, broker)
    outputs = {names.alerts, names.deadletter}  # their retention is their readers' business
    for topic in topics:
        if (state := broker.get(topic.name)) is not None:
            found += _config_problems(topic, state, settings, tool, read=topic.name not in outputs)
    order = {topic.name: i for i, topic in enumerate(topics)}
    return sorted(found, key=lambda problem: order.get(problem.topic, -1))  # topic by topic


def layout_problems(settings: Settings, broker: Mapping[str, TopicState]) -> list[Problem]:
    """The topics that are missing or whose partitions the worker cannot join on (what the
    metadata alone tells)."""
    names, tool = Topics(settings.topics.prefix), _tool(settings)
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
    for topic in needed(settings, broker):
        state = broker.get(topic.name)
        if state is None:
            found.append(Problem(topic.name, "missing", "driftstream topics create"))
        elif topic.partitions is not None and state.partitions != topic.partitions:
            found.append(
                Problem(
                    topic.name,
                    f"{state.partitions} partitions where {topic.partitions} are needed",
                    f"kafka-topics.sh {tool} --delete --topic {topic.name}, then driftstream "
                    "topics create (a store or repartition topic has one partition per "
                    "partition of its stream)",
                )
            )
    return found


def _tool(settings: Settings) -> str:
    return f"--bootstrap-server {settings.kafka.bootstrap_servers}"


def _config_problems(
    topic: Needed, state: TopicState, settings: Settings, tool: str, read: bool
) -> list[Problem]:
    name, found = topic.name, []
    configs = f"kafka-configs.sh {tool} --alter --entity-type topics --entity-name {name}"
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


def ensure_worker_topics(settings: Settings) -> dict[str, int]:
    """Create the topics the worker needs and lacks (:func:`create_missing`) and check that it
    can join on them (:func:`layout_problems`: :class:`TopicError` naming each problem and its
    fix); every topic's partitions. Metadata only: the worker needs no right to read configs."""

    def layout() -> dict[str, TopicState]:
        counts = partition_counts(settings.kafka)
        return {name: TopicState(n, 0, {}) for name, n in counts.items()}

    create_missing(settings, layout())
    broker = layout()
    if wrong := layout_problems(settings, broker):
        raise TopicError("; ".join(f"{p.topic}: {p.wrong} (fix: {p.fix})" for p in wrong))
    return {name: state.partitions for name, state in broker.items()}
