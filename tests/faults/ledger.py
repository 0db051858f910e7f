"""The books a fault test balances: what was sent, against what the pipeline made of it."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from confluent_kafka import Producer

from detectors.bank import SILENCE_DETECTOR
from detectors.join_buffer import JoinedOutcome
from pipeline.observations import decode_observation
from pipeline.partitioner import partition_for
from producers.simulator import ModelTraffic, simulate
from schemas.codec import decode, encode
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.local.services.process import wait_until
from stream_app.settings import Engine, Settings
from stream_app.topics import Topics
from tests.integration.kafka_io import consume, consume_to_end, topic_size
from tests.pipeline import (
    Event,
    alerts_of,
    beside_silences,
    joined_request_ids,
    labelled_requests,
    live_view,
    replayed_alerts,
)

CLOCK_MODEL = "clock"
"""The model of the predictions that push every partition's event time past the TTL."""


@dataclass
class Ledger:
    """A seeded stream with its known totals.

    Once the worker has joined the simulated traffic, a prediction and its label per input
    partition stamped two TTLs after the last event move every partition's watermark on, so
    each unlabelled prediction must expire.
    """

    models: list[ModelTraffic]
    settings: Settings
    events: list[Event] = field(init=False)

    def __post_init__(self) -> None:
        self.events = list(simulate(self.models))

    @property
    def model_ids(self) -> list[str]:
        return [m.model_id for m in self.models]

    def labelled(self, model_id: str) -> set[str]:
        return labelled_requests(self.events, model_id)

    def observations(self) -> int:
        """The observations the join stage makes of the stream: one per prediction, one per
        labelled prediction."""
        return sum(m.truth.predictions + len(self.labelled(m.model_id)) for m in self.models)

    def expected(self) -> dict[str, dict[str, int]]:
        """Per model: the counts the pipeline must end with, at least (event counts) or
        exactly (``*_applied``: what the detectors applied)."""
        books = {}
        for model in self.models:
            truth = model.truth
            joined = len(self.labelled(model.model_id))
            books[model.model_id] = {
                "predictions_applied": truth.predictions,
                "outcomes_applied": joined,
                "predictions": truth.predictions,
                "labels": truth.label_events,
                "joined": joined,
                "expired_predictions": truth.predictions - joined,
            }
        return books

    def clock_events(self) -> list[tuple[int, Event]]:
        """The watermark pushers: a prediction and its label for each input partition, keyed so
        that Kafka's default partitioner puts them there too (the repartition hop keeps them)."""
        late = max(e.timestamp for e in self.events) + timedelta(
            seconds=2 * self.settings.join.ttl_seconds
        )
        partitions = self.settings.topics.partitions
        events: list[tuple[int, Event]] = []
        for partition in range(partitions):
            request_id = next(
                key
                for i in itertools.count()
                if partition_for((key := f"clock-{partition}-{i}").encode(), partitions)
                == partition
            )
            prediction = PredictionEvent(
                request_id=request_id,
                model_id=CLOCK_MODEL,
                model_version="1",
                timestamp=late,
                features={},
                prediction=0,
            )
            label = LabelEvent(request_id=request_id, model_id=CLOCK_MODEL, timestamp=late, label=0)
            events += [(partition, prediction), (partition, label)]
        return events

    def send_clock(self, topics: Topics) -> None:
        """Send :meth:`clock_events`, each to its partition."""
        producer = Producer(self.settings.kafka.client_config())
        for partition, event in self.clock_events():
            topic = topics.predictions if isinstance(event, PredictionEvent) else topics.labels
            producer.produce(topic, key=event.request_id, value=encode(event), partition=partition)
        assert producer.flush(30) == 0

    def replayed_alerts(self) -> list[DriftAlert]:
        """The alerts the offline replay of the same stream raises, the clock events last (they
        reveal the models that went silent)."""
        clock = [event for _partition, event in self.clock_events()]
        return replayed_alerts(self.settings, [*self.events, *clock])


EXACT = ("predictions_applied", "outcomes_applied")
READ = ("predictions", "labels")
"""The event counters, of events read: their truth is what the input topics hold."""


def input_records(ledger: Ledger, topics: Topics) -> Counter[tuple[str, str]]:
    """Records per (model id, counter) on the input topics: the events sent, plus any copy a
    producer wrote again while the broker was away (then the worker must count it too)."""
    names = {topics.predictions: "predictions", topics.labels: "labels"}
    total = sum(topic_size(ledger.settings, topic) for topic in names)
    records: Counter[tuple[str, str]] = Counter()
    for message in consume(ledger.settings, list(names), expected=total):
        name = names[str(message.topic())]
        data = message.value() or b""
        event = decode(PredictionEvent, data) if name == "predictions" else decode(LabelEvent, data)
        if event.model_id != CLOCK_MODEL:
            records[(event.model_id, name)] += 1
    return records


def settled(ledger: Ledger, topics: Topics, timeout: float = 150) -> dict[str, dict[str, int]]:
    """Wait until the detectors applied everything, move the clock, wait until Redis shows
    every model's books complete (or time is up); return them."""
    expected = ledger.expected()

    def books() -> dict[str, dict[str, int]]:
        view = live_view(ledger.settings)
        return {m: {n: int(view.get(m, {}).get(n, 0)) for n in expected[m]} for m in expected}

    def reached(names: tuple[str, ...]) -> bool:
        return all(b[n] >= expected[m][n] for m, b in books().items() for n in names)

    wait_until(lambda: reached(EXACT), timeout, interval=1.0)
    ledger.send_clock(topics)
    wait_until(lambda: reached(tuple(next(iter(expected.values())))), timeout, interval=1.0)
    return books()


def audit(
    ledger: Ledger,
    topics: Topics,
    engine: Engine,
    *,
    as_replayed: bool = True,
    crashed: bool = False,
) -> dict[str, object]:
    """Check the books; return the figures for the report (assertions say what broke).

    Exact on every runtime: every labelled prediction's outcome (one outcome record each on the
    Kafka-native runtime, which is exactly once) and every prediction applied once by the
    detectors, no alert id twice, and (``as_replayed``) the alerts of the offline replay, and
    no record skipped by the consumer (``offset_gaps``; a record read twice is allowed). The
    event counters (``predictions``, ``labels``: events read) are checked against the records
    the input topics hold, which exceed the events sent if a producer wrote a batch twice
    while the broker was away; the report says how many. They are exact on the Kafka-native
    runtime, which derives them from committed state. On Faust (at-least-once) they are at
    least that, since an event read again counts again, and after a crash (``crashed``) only
    reported: a worker killed between its offset commit and its next Redis flush loses up to
    a second of them.
    """
    expected = ledger.expected()
    books = settled(ledger, topics)
    labelled = set().union(*(ledger.labelled(m) for m in ledger.model_ids))
    outcomes = Counter(
        observation.request_id
        for message in consume_to_end(
            ledger.settings,
            [topics.observations],
            # the last of them may still be on their way from Faust
            until=lambda got: labelled <= set(joined_request_ids(got)),
        )
        if isinstance(observation := decode_observation(message.value() or b""), JoinedOutcome)
        and observation.model_id != CLOCK_MODEL
    )
    replayed = ledger.replayed_alerts() if as_replayed else []
    wanted = {a.alert_id for a in replayed if a.detector != SILENCE_DETECTOR}
    alerts = alerts_of(
        consume_to_end(
            ledger.settings,
            [topics.alerts],
            until=lambda got: wanted <= {a.alert_id for a in alerts_of(got)},
        )
    )
    written = input_records(ledger, topics)
    for model_id, figures in expected.items():
        figures.update({name: written[(model_id, name)] for name in READ})
    alert_ids = Counter(a.alert_id for a in alerts)
    pipeline = live_view(ledger.settings)["_pipeline"]
    report = {
        "sent": len(ledger.events),
        "books": books,
        "expected": expected,
        "input records written twice": sum(written.values()) - len(ledger.events),
        "outcome messages": sum(outcomes.values()),
        "distinct outcomes": len(outcomes),
        "alerts": len(alerts),
        "pipeline": pipeline,
    }
    print(report)
    assert set(outcomes) == labelled, "a labelled prediction has no outcome"
    exactly_once = engine == "kafka"
    if exactly_once:
        assert all(n == 1 for n in outcomes.values()), "an outcome record was written twice"
    for model_id, figures in books.items():
        for name, n in figures.items():
            if name in EXACT or exactly_once:
                assert n == expected[model_id][name], (model_id, name, n, expected[model_id])
            elif not crashed:
                assert n >= expected[model_id][name], (model_id, name, n, expected[model_id])
    assert all(n == 1 for n in alert_ids.values()), f"an alert id was published twice: {alert_ids}"
    if as_replayed:
        heard, replayed = beside_silences(alerts, replayed)
        assert sorted(a.alert_id for a in heard) == sorted(a.alert_id for a in replayed)
    assert int(pipeline.get("deadlettered", 0)) == 0
    assert "offset_gaps" not in pipeline, "the consumer skipped records (see the worker logs)"
    return report
