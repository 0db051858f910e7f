"""``driftstream topics create|check`` on the real broker, with topics an operator made wrong."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from stream_app.cli import app
from stream_app.settings import Settings
from stream_app.topics import Topics, partition_counts, repartition_topics, store_topics


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)
    monkeypatch.setenv("DRIFTSTREAM_TOPICS__PREFIX", settings.topics.prefix)
    return CliRunner()


def test_create_makes_what_the_worker_needs_and_check_passes(
    settings: Settings, cli: CliRunner
) -> None:
    names = Topics(settings.topics.prefix)
    admin = AdminClient(settings.kafka.client_config())
    admin.create_topics([NewTopic(names.predictions, 6, 1)])[names.predictions].result()
    created = cli.invoke(app, ["topics", "create"])
    assert created.exit_code == 0, created.output
    app_id = f"{names.prefix}worker"
    counts = partition_counts(settings.kafka)
    join_store, detect_store = store_topics(app_id)
    moved = repartition_topics(app_id, names).values()
    assert [counts[t] for t in [*moved, join_store]] == [6, 6, 6]
    assert counts[detect_store] == counts[names.observations] == settings.topics.partitions
    checked = cli.invoke(app, ["topics", "check", "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output) == []


def test_check_says_what_is_wrong_and_how_to_fix_it(settings: Settings, cli: CliRunner) -> None:
    names = Topics(settings.topics.prefix)
    join_store, _detect_store = store_topics(f"{names.prefix}worker")
    admin = AdminClient(settings.kafka.client_config())
    made = [NewTopic(names.predictions, 6, 1), NewTopic(names.labels, 1, 1)]
    made.append(NewTopic(join_store, 2, 1))  # neither sized nor compacted as a store
    for future in admin.create_topics(made).values():
        future.result()
    checked = cli.invoke(app, ["topics", "check", "--json"])
    assert checked.exit_code == 1, checked.output
    found = {(p["topic"], p["wrong"]) for p in json.loads(checked.output)}
    assert (join_store, "2 partitions where 6 are needed") in found
    assert (join_store, "not compacted: a store must keep each key's last value") in found
    assert (names.alerts, "missing") in found
    shown = cli.invoke(app, ["topics", "check"])
    assert shown.exit_code == 1
    assert "cleanup.policy=compact" in shown.output
    assert f"--delete --topic {join_store}" in shown.output


def test_a_broker_that_does_not_answer_is_one_clear_error(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = cli.invoke(app, ["topics", "check"])
    assert result.exit_code == 2
    assert "did not answer" in result.output
