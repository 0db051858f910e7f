"""The Kafka-native worker's detectors take each model's observations in event-time order.

Observations are written straight to the ``observations`` topic by a plain librdkafka producer,
out of order as the join stages of several workers under a backlog would write them: each moved
by up to 80% of ``worker.lateness_seconds`` of event time, and a few of the
stable model's predictions sent after everything else. The worker must raise the alerts of the
stream in order (the same ids, event times and detection times) and count exactly the
stragglers as late.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from detectors.config import DetectorConfig
from detectors.join_buffer import JoinBuffer
from pipeline.detect import DetectProcessor, observation_key
from pipeline.effects import Effects, InputRecord, Observation
from pipeline.observations import encode_observation
from producers.simulator import ModelTraffic, simulate
from schemas.events import PredictionEvent
from stream_app.local.services.process import wait_until
from stream_app.settings import Settings
from stream_app.topics import ensure_topics
from tests.pipeline import WorkerPool, alert_facts, live_view, published_alerts, worker_ready

MODELS = ("fraud", "stable")
STRAGGLERS = 3


def observations() -> list[Observation]:
    """What the join stage makes of a drifting and a stable model's traffic, in order."""
    traffic = [
        ModelTraffic("fraud", "abrupt", 3000, seed=11, drift_at=1500, requests_per_second=50),
        ModelTraffic("stable", "stable", 3000, seed=12, requests_per_second=50),
    ]
    join = JoinBuffer({}, ttl_seconds=3600, max_pending=1_000_000)
    made: list[Observation] = []
    for event in simulate(traffic):
        offered = join.offer(event)
        if isinstance(event, PredictionEvent) and offered.note != "duplicate":
            made.append(event)
        if offered.outcome is not None:
            made.append(offered.outcome)
    return made


def arriving(stream: list[Observation], within: float, seed: int) -> list[Observation]:
    """``stream`` moved about by up to ``within`` seconds, then the first predictions of the
    stable model (``STRAGGLERS`` of them) at the very end."""
    stragglers = [o for o in stream if o.model_id == "stable"][:STRAGGLERS]
    rest = [o for o in stream if all(o is not s for s in stragglers)]
    rng = random.Random(seed)
    moved = sorted(rest, key=lambda o: observation_key(o)[0].timestamp() + rng.uniform(0, within))
    return [*moved, *stragglers]


def detected(stream: list[Observation], lateness: float) -> tuple[list[Any], dict[str, int]]:
    """The alerts (id, event time, detection time) the detection processor raises on
    ``stream`` read in that order, and its late observations per model."""
    detect, effects = DetectProcessor(DetectorConfig(), lateness_seconds=lateness), Effects()
    for offset, observation in enumerate(stream):
        value = encode_observation(observation)
        record = InputRecord("observations", 0, offset, observation.model_id.encode(), value)
        detect.process(record, effects)
    detect.release_all(effects)
    late = {m: 0 for m in MODELS}
    for (model_id, name, _source), n in effects.counts.items():
        if name == "late_observations" and model_id is not None:
            late[model_id] += n
    return alert_facts(effects.alerts), late


def test_observations_out_of_order_reach_the_detectors_in_event_time_order(
    settings: Settings, tmp_path: Path
) -> None:
    stream = observations()
    lateness = settings.worker.lateness_seconds
    in_order, _ = detected(stream, lateness)
    assert in_order, "the abrupt drift should raise alerts"
    arrivals = arriving(stream, within=0.8 * lateness, seed=3)
    as_they_come, inversions = detected(arrivals, lateness=0.0)
    assert as_they_come != in_order, "unordered, the detectors would alert otherwise"
    assert inversions["fraud"] > 100
    expected_alerts, expected_late = detected(arrivals, lateness)
    assert expected_late == {"fraud": 0, "stable": STRAGGLERS}

    names = ensure_topics(settings.kafka, settings.topics)
    producer = Producer(settings.kafka.client_config())  # librdkafka's own partitioner
    for observation in arrivals:
        producer.produce(
            names.observations, encode_observation(observation), observation.model_id.encode()
        )
    assert producer.flush(60) == 0
    applied = {m: sum(o.model_id == m for o in stream) for m in MODELS}

    def all_applied() -> bool:
        view = live_view(settings)
        return all(
            int(view.get(m, {}).get("predictions_applied", 0))
            + int(view.get(m, {}).get("outcomes_applied", 0))
            == n
            for m, n in applied.items()
        )

    with WorkerPool(settings, tmp_path, "kafka") as pool:
        worker = pool.start()
        assert wait_until(lambda: worker_ready(worker.log_tail()), 90), worker.log_tail()
        assert wait_until(all_applied, 120, interval=0.5), live_view(settings)
        view = live_view(settings)
        alerts = published_alerts(settings)
    late = {m: int(view[m].get("late_observations", 0)) for m in MODELS}
    assert late == expected_late
    assert alert_facts(alerts) == expected_alerts == in_order
    print(
        f"{len(arrivals)} observations out of order: {len(alerts)} alerts as in order, late {late}"
    )
