"""``driftstream topics create|check`` on the real broker, with topics an operator made wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.settings import Settings
from stream_app.topics import (
    Topics,
    delete_topics,
    partition_counts,
    repartition_topics,
    store_topics,
)


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A runner whose commands use this test's topic prefix; its topics are deleted after."""
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)
    monkeypatch.setenv("DRIFTSTREAM_TOPICS__PREFIX", settings.topics.prefix)
    yield CliRunner()
    delete_topics(settings.kafka, settings.topics.prefix)


def make(settings: Settings, *topics: NewTopic) -> None:
    admin = AdminClient(settings.kafka.client_config())
    for future in admin.create_topics(list(topics)).values():
        future.result()


def test_create_makes_what_the_worker_needs_and_check_passes(
    settings: Settings, cli: CliRunner
) -> None:
    names = Topics(settings.topics.prefix)
    make(settings, NewTopic(names.predictions, 6, 1))
    created = cli.invoke(app, ["topics", "create"])
    assert created.exit_code == 0, created.output
    app_id = f"{names.prefix}worker"
    join_store, detect_store = store_topics(app_id)
    assert f"created {join_store}: 6 partitions, 1 replicas, cleanup.policy=compact" in (
        created.output
    )
    assert f"created {names.predictions}:" not in created.output
    counts = partition_counts(settings.kafka)
    moved = repartition_topics(app_id, names).values()
    assert [counts[t] for t in [*moved, join_store]] == [6, 6, 6]
    assert counts[detect_store] == counts[names.observations] == settings.topics.partitions
    checked = cli.invoke(app, ["topics", "check", "--json"])
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["problems"] == []
    assert len(report["topics"]) == 9
    assert all(t["ok"] for t in report["topics"])


def test_check_says_what_is_wrong_and_how_to_fix_it(settings: Settings, cli: CliRunner) -> None:
    names = Topics(settings.topics.prefix)
    join_store, _detect_store = store_topics(f"{names.prefix}worker")
    make(
        settings,
        NewTopic(names.predictions, 6, 1),
        NewTopic(names.labels, 1, 1),
        NewTopic(join_store, 2, 1),  # neither sized nor compacted as a store
    )
    checked = cli.invoke(app, ["topics", "check", "--json"])
    assert checked.exit_code == 1, checked.output
    found = {(p["topic"], p["wrong"]) for p in json.loads(checked.output)["problems"]}
    assert (join_store, "2 partitions where 6 are needed") in found
    assert (join_store, "not compacted: a store must keep each key's last value") in found
    assert (names.alerts, "missing") in found
    shown = cli.invoke(app, ["topics", "check"])
    assert shown.exit_code == 1
    assert "cleanup.policy=compact" in shown.output
    assert f"--delete --topic {join_store}" in shown.output
    created = cli.invoke(app, ["topics", "create"])  # makes the rest, leaves the store as it is
    assert created.exit_code == 1, created.output
    assert f"created {names.alerts}:" in created.output
    rest = {
        p["topic"]
        for p in json.loads(cli.invoke(app, ["topics", "check", "--json"]).output)["problems"]
    }
    assert rest == {join_store}


@pytest.mark.parametrize("command", ["check", "create"])
def test_a_broker_that_does_not_answer_is_one_clear_error(
    command: str, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = cli.invoke(app, ["topics", command])
    assert result.exit_code == 2
    assert result.output.startswith("error: Kafka at 127.0.0.1:1 did not answer")
    assert result.output.count("\n") == 1
