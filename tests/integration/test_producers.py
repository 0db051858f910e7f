"""Simulated traffic through the real broker: every event arrives, keyed and co-partitioned."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import typer
from confluent_kafka import Message
from typer.testing import CliRunner

from producers.kafka_producer import EventProducer
from producers.scenarios import Scenario
from producers.simulator import LabelPolicy, ModelTraffic, simulate
from producers.sink import DeliveryError
from schemas.codec import decode, encode
from schemas.events import LabelEvent, PredictionEvent
from stream_app.cli.simulate import simulate as simulate_command
from stream_app.settings import KafkaSettings, Settings
from stream_app.topics import Topics
from tests.integration.kafka_io import consume

pytestmark = pytest.mark.integration

POLICY = LabelPolicy(coverage=0.8, early_prob=0.1, duplicate_prob=0.1)
cli = typer.Typer()
cli.command()(simulate_command)


def decoded(
    messages: list[Message], topics: Topics
) -> list[tuple[PredictionEvent | LabelEvent, Message]]:
    """Every message with its event (decoding fails the test on any invalid one)."""
    pairs: list[tuple[PredictionEvent | LabelEvent, Message]] = []
    for message in messages:
        value = message.value()
        assert value is not None
        if message.topic() == topics.predictions:
            pairs.append((decode(PredictionEvent, value), message))
        else:
            pairs.append((decode(LabelEvent, value), message))
    return pairs


@pytest.mark.parametrize("scenario", list(Scenario))
def test_simulated_traffic_arrives_keyed_and_co_partitioned(
    settings: Settings, topics: Topics, scenario: Scenario
) -> None:
    model = ModelTraffic("m1", scenario, n_predictions=300, seed=1, labels=POLICY, warmup=500)
    sent = list(simulate([model]))
    with EventProducer(settings.kafka, topics) as producer:
        for event in sent:
            producer.send(event)
    assert (producer.stats.delivered, producer.stats.failed) == (len(sent), 0)

    messages = consume(settings, [topics.predictions, topics.labels], expected=len(sent))
    received = decoded(messages, topics)
    truth = model.truth
    assert len(received) == truth.predictions + truth.label_events == len(sent)
    assert Counter(encode(e) for e, _ in received) == Counter(encode(e) for e in sent)
    assert all(m.key() == e.request_id.encode() for e, m in received)

    partitions: defaultdict[str, set[int]] = defaultdict(set)
    for event, message in received:
        partition = message.partition()
        assert partition is not None
        partitions[event.request_id].add(partition)
    assert all(len(p) == 1 for p in partitions.values())

    predicted_at = {
        e.request_id: e.timestamp for e, _ in received if isinstance(e, PredictionEvent)
    }
    labels = Counter(e.request_id for e, _ in received if isinstance(e, LabelEvent))
    early = {
        e.request_id
        for e, _ in received
        if isinstance(e, LabelEvent) and e.timestamp < predicted_at[e.request_id]
    }
    duplicates = sum(labels.values()) - len(labels)
    assert (len(labels), duplicates, len(early)) == (
        truth.labels,
        truth.duplicate_labels,
        truth.early_labels,
    )
    labelled_share = POLICY.coverage  # of the requests before the drift, under labels-stop
    if scenario is Scenario.LABELS_STOP and truth.drift_start_index is not None:
        labelled_share *= truth.drift_start_index / truth.predictions
    assert len(labels) / truth.predictions == pytest.approx(labelled_share, abs=0.07)
    assert truth.duplicate_labels / len(labels) == pytest.approx(POLICY.duplicate_prob, abs=0.05)
    assert len(early) / len(labels) == pytest.approx(POLICY.early_prob, abs=0.05)


def send_all(kafka: KafkaSettings, events: list[PredictionEvent | LabelEvent]) -> None:
    with EventProducer(kafka, Topics("nowhere."), message_timeout=0.5) as producer:
        for event in events:
            producer.send(event)


def test_undeliverable_events_are_counted_and_reported_in_bounded_time() -> None:
    unreachable = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    events = list(simulate([ModelTraffic("m1", n_predictions=3, warmup=10)]))
    started = time.monotonic()
    producer = EventProducer(unreachable, Topics("nowhere."), message_timeout=0.5)
    for event in events:
        producer.send(event)
    stats = producer.close()
    assert (stats.sent, stats.delivered, stats.failed) == (len(events), 0, len(events))
    assert "timed out" in stats.first_errors[0]
    with pytest.raises(DeliveryError, match=f"{len(events)} failed"):
        send_all(unreachable, events)
    assert time.monotonic() - started < 15


def test_the_cli_creates_the_topics_and_sends_to_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    topics = Topics(settings.topics.prefix)
    monkeypatch.setenv("DRIFTSTREAM_TOPICS__PREFIX", settings.topics.prefix)
    truth_file = tmp_path / "truth.json"
    result = CliRunner().invoke(
        cli, ["-m", "a=abrupt", "--events", "100", "--truth", str(truth_file)]
    )
    assert result.exit_code == 0, result.output
    [truth] = json.loads(truth_file.read_text())
    sent = truth["predictions"] + truth["labels"] + truth["duplicate_labels"]
    messages = consume(settings, [topics.predictions, topics.labels], expected=sent)
    assert len(messages) == sent
    assert sum(m.topic() == topics.predictions for m in messages) == 100
