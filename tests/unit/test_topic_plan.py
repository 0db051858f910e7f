"""The topic plan on plain data: what the worker needs, and each problem with its fix."""

from __future__ import annotations

from typing import Any

from stream_app.settings import JoinSettings, KafkaSettings, Settings, TopicSettings, WorkerSettings
from stream_app.topic_plan import DAY_MS, Needed, Problem, TopicState, needed, problems

P = "p."
COMPACT = {"cleanup.policy": "compact"}
DELETE = {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)}


def make_settings(replication: int = 1, **update: Any) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers="k:9092"),
        topics=TopicSettings(prefix=P, partitions=3, replication_factor=replication),
    ).model_copy(update=update)


def healthy(predictions: int = 6, labels: int = 2, observations: int = 3) -> dict[str, TopicState]:
    """Every topic the worker of ``make_settings()`` needs, as it should be."""
    events = {"predictions": predictions, "labels": labels, "observations": observations}
    broker = {P + name: TopicState(n, 1, DELETE) for name, n in events.items()}
    broker |= {P + name: TopicState(1, 1, DELETE) for name in ("alerts", "deadletter")}
    join = max(predictions, labels)
    for side in ("predictions", "labels"):
        broker[f"{P}worker-{side}-repartition"] = TopicState(join, 1, DELETE)
    broker[f"{P}worker-join-store"] = TopicState(join, 1, COMPACT)
    broker[f"{P}worker-detect-store"] = TopicState(observations, 1, COMPACT)
    return broker


def wrong(found: list[Problem], topic: str) -> list[str]:
    return [p.wrong for p in found if p.topic == topic]


def test_healthy_topics_have_no_problem() -> None:
    assert problems(make_settings(), healthy()) == []


def test_an_empty_broker_needs_every_topic_sized_from_the_settings() -> None:
    plan = {t.name: t for t in needed(make_settings(), {})}
    assert plan[P + "predictions"] == Needed(P + "predictions", None, False)
    assert plan[P + "worker-predictions-repartition"].partitions == 3
    assert plan[P + "worker-join-store"] == Needed(P + "worker-join-store", 3, True)
    assert plan[P + "worker-detect-store"].config == COMPACT
    assert {p.wrong for p in problems(make_settings(), {})} == {"missing"}
    assert len(problems(make_settings(), {})) == len(plan) == 9


def test_stores_follow_the_larger_input_and_the_observations() -> None:
    plan = {t.name: t.partitions for t in needed(make_settings(), healthy(2, 8, 5))}
    assert plan[P + "worker-labels-repartition"] == 8
    assert plan[P + "worker-join-store"] == 8
    assert plan[P + "worker-detect-store"] == 5
    assert plan[P + "labels"] is None  # the inputs may have any count


def test_a_store_sized_off_its_stream_is_deleted_and_made_again() -> None:
    broker = healthy() | {P + "worker-detect-store": TopicState(4, 1, COMPACT)}
    [problem] = problems(make_settings(), broker)
    assert problem.wrong == "4 partitions where 3 are needed"
    assert problem.fix.startswith(
        f"kafka-topics.sh --bootstrap-server k:9092 --delete --topic {P}worker-detect-store"
    )
    assert "driftstream topics create" in problem.fix


def test_a_store_not_compacted_gets_the_kafka_configs_command() -> None:
    broker = healthy() | {P + "worker-join-store": TopicState(6, 1, DELETE)}
    [problem] = problems(make_settings(), broker)
    assert problem.severity == "error"
    assert problem.fix == (
        "kafka-configs.sh --bootstrap-server k:9092 --alter --entity-type topics "
        f"--entity-name {P}worker-join-store --add-config cleanup.policy=compact"
    )


def test_a_compacted_event_topic_is_an_error() -> None:
    broker = healthy() | {P + "alerts": TopicState(1, 1, {"cleanup.policy": "compact,delete"})}
    found = problems(make_settings(), broker)
    assert wrong(found, P + "alerts") == [
        "cleanup.policy compact,delete: compaction would drop events that share a key"
    ]
    assert found[0].fix.endswith("--add-config cleanup.policy=delete")


def test_replication_below_the_setting_is_an_error_on_every_topic() -> None:
    found = problems(make_settings(replication=3), healthy())
    assert len(found) == len(healthy())
    assert {p.wrong for p in found} == {"replication 1, below topics.replication_factor 3"}
    assert "kafka-reassign-partitions.sh --bootstrap-server k:9092" in found[0].fix


def test_short_retention_on_what_the_worker_reads_is_a_warning() -> None:
    hour = {"cleanup.policy": "delete", "retention.ms": "3600000"}
    broker = healthy() | {
        P + "labels": TopicState(2, 1, hour),
        P + "alerts": TopicState(1, 1, hour),
    }
    [problem] = problems(make_settings(), broker)  # the alerts' readers choose their retention
    assert (problem.topic, problem.severity) == (P + "labels", "warning")
    assert problem.wrong.startswith("retention 1.0 h")
    assert problem.fix.endswith(f"--add-config retention.ms={7 * DAY_MS}")


def test_internal_topics_follow_the_app_id() -> None:
    settings = make_settings(worker=WorkerSettings(app_id="fraud"))
    names = {t.name for t in needed(settings, {})}
    assert {"fraud-predictions-repartition", "fraud-join-store", "fraud-detect-store"} <= names


def test_without_the_hop_the_inputs_must_be_copartitioned() -> None:
    settings = make_settings(join=JoinSettings(repartition=False))
    broker = healthy(6, 2)
    plan = {t.name: t.partitions for t in needed(settings, broker)}
    assert not any(name.endswith("-repartition") for name in plan)
    assert plan[P + "worker-join-store"] == 6  # the predictions'
    found = problems(settings, broker)
    assert found[0].topic == f"{P}predictions and {P}labels"
    assert "DRIFTSTREAM_JOIN__REPARTITION=true" in found[0].fix
