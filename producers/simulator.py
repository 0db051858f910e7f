"""A seeded, reproducible stream of model traffic: predictions now, ground truth later.

Each model is a river Hoeffding tree trained on a warm-up segment of its world (not emitted)
and then frozen, as a production model is; its world then drifts as the scenario says, so
concept drift shows up as a real accuracy drop. The data changes (category shift, missing
feature, surge, labels stop or late) draw from a random stream of their own, so before the drift
their traffic is exactly the ``stable`` traffic of the same model id and seed. Labels arrive
late (exponential delay), for a fraction of requests, sometimes before their prediction and
sometimes twice. Timestamps are simulated event time from ``EPOCH``, and events come out in
simulated arrival order, so a seed gives the same bytes every time.

>>> model = ModelTraffic("credit", Scenario.ABRUPT, n_predictions=200, seed=7, warmup=500)
>>> events = list(simulate([model]))
>>> model.truth.predictions, model.truth.drift_start_index
(200, 100)
>>> len(events) == model.truth.predictions + model.truth.label_events
True
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict
from river import tree

from producers.loan_data import Features, LoanApplications
from producers.scenarios import (
    CATEGORY_SHIFT_SHARE,
    FLIPS,
    LATE_FACTOR,
    MISSING_FEATURE_NAME,
    SHIFTED_CATEGORY_FEATURE,
    SHIFTED_CATEGORY_VALUE,
    SURGE_FACTOR,
    DriftKind,
    DriftSchedule,
    Scenario,
)
from schemas.events import LabelEvent, PredictionEvent

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
"""Simulated event time starts here, whatever the wall clock says."""
REQUEST_ID_NAMESPACE = uuid.UUID("5f0c2c1e-9d8a-4a52-9a7e-3b1f6d0e8c41")
POSITIVE_CLASS = 1
CLASSES = (0, POSITIVE_CLASS)


class Classifier(Protocol):
    """The part of a river classifier the simulator uses."""

    def learn_one(self, x: Features, y: int) -> None: ...

    def predict_proba_one(self, x: Features) -> dict[int, float]: ...


@dataclass(frozen=True)
class LabelPolicy:
    """When and how often ground truth arrives (delays are seconds of event time)."""

    coverage: float = 0.8
    """Share of requests that ever get a label."""
    mean_delay: float = 30.0
    """Mean of the exponential delay between a prediction and its label."""
    early_prob: float = 0.05
    """Share of labels that arrive before their prediction."""
    early_lead: float = 2.0
    """An early label precedes its prediction by up to this many seconds (uniform)."""
    duplicate_prob: float = 0.02
    """Share of labels delivered a second time (an exact copy, later)."""

    def __post_init__(self) -> None:
        for name in ("coverage", "early_prob", "duplicate_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        if self.mean_delay <= 0 or self.early_lead <= 0:
            raise ValueError("mean_delay and early_lead must be positive")

    @property
    def events_per_prediction(self) -> float:
        """Expected events (the prediction and its label copies) per request."""
        return 1.0 + self.coverage * (1.0 + self.duplicate_prob)


@dataclass(frozen=True)
class Arrival:
    """An event and the simulated time it reaches Kafka (later than its timestamp if a copy)."""

    time: float
    index: int
    """The prediction index of the request the event belongs to."""
    event: PredictionEvent | LabelEvent
    early: bool = False
    duplicate: bool = False


class Truth(BaseModel):
    """What really happened in one model's traffic: the answer key for detectors and tests.

    The drift window is ``[drift_start_index, drift_start_index + drift_width]`` in prediction
    indexes: a ``gradual`` transition, or the ``recurring`` episode before the concept returns.
    Counts are of emitted events; ``labels`` counts labelled requests (first deliveries).
    """

    model_config = ConfigDict(extra="forbid")

    model_id: str
    model_version: str
    scenario: Scenario
    drift_kind: DriftKind
    drift_start_index: int | None
    drift_width: int
    drift_start_time: datetime | None = None
    drift_end_time: datetime | None = None
    label_coverage: float
    predictions: int = 0
    labels: int = 0
    duplicate_labels: int = 0
    early_labels: int = 0

    @property
    def label_events(self) -> int:
        """All label events emitted, duplicates included."""
        return self.labels + self.duplicate_labels

    def record(self, arrival: Arrival) -> None:
        """Count an emitted event; note the event time where the drift window starts and ends."""
        if isinstance(arrival.event, PredictionEvent):
            self.predictions += 1
            if self.drift_start_index is None:
                return
            if arrival.index == self.drift_start_index:
                self.drift_start_time = arrival.event.timestamp
            if arrival.index == self.drift_start_index + self.drift_width:
                self.drift_end_time = arrival.event.timestamp
        elif arrival.duplicate:
            self.duplicate_labels += 1
        else:
            self.labels += 1
            self.early_labels += arrival.early


class ModelTraffic:
    """One model's requests, predictions and late labels under a drift scenario."""

    def __init__(
        self,
        model_id: str,
        scenario: Scenario | str = Scenario.STABLE,
        n_predictions: int = 1000,
        seed: int = 0,
        *,
        model_version: str = "1",
        drift_at: int | None = None,
        drift_width: int | None = None,
        labels: LabelPolicy | None = None,
        requests_per_second: float = 10.0,
        label_noise: float = 0.05,
        warmup: int = 2000,
    ) -> None:
        if n_predictions < 1 or warmup < 1 or requests_per_second <= 0:
            raise ValueError("n_predictions, warmup and requests_per_second must be positive")
        self.model_id = model_id
        self.model_version = model_version
        self.n_predictions = n_predictions
        self.seed = seed
        self.schedule = DriftSchedule.for_scenario(
            Scenario(scenario), n_predictions, drift_at, drift_width
        )
        self.labels = labels or LabelPolicy()
        self.requests_per_second = requests_per_second
        self.label_noise = label_noise
        self.warmup = warmup
        self.truth = self._blank_truth()

    def _blank_truth(self) -> Truth:
        return Truth(
            model_id=self.model_id,
            model_version=self.model_version,
            scenario=self.schedule.scenario,
            drift_kind=self.schedule.scenario.drift_kind,
            drift_start_index=self.schedule.start,
            drift_width=self.schedule.width,
            label_coverage=self.labels.coverage,
        )

    def _seed_for(self, purpose: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}/{self.model_id}/{purpose}".encode(), digest_size=8)
        return int.from_bytes(digest.digest())

    def _arrivals(self) -> Iterator[Arrival]:
        """Every event in simulated arrival order (a heap that holds back until it is safe)."""
        self.truth = self._blank_truth()
        world = LoanApplications(self._seed_for("world"), self.label_noise)
        model = _frozen_model(world, self.warmup)
        clock = random.Random(self._seed_for("clock"))
        labelling = random.Random(self._seed_for("labels"))
        change = random.Random(self._seed_for("scenario"))
        scenario = self.schedule.scenario
        order = itertools.count()
        pending: list[tuple[float, int, Arrival]] = []
        now = 0.0
        for index in range(self.n_predictions):
            weight = self.schedule.weight(index)
            rate = self.requests_per_second
            if scenario is Scenario.SURGE:
                rate *= 1.0 + (SURGE_FACTOR - 1.0) * weight
            now += clock.expovariate(rate)
            flips = scenario in FLIPS
            features, label = world.draw(
                concept_drift=weight if scenario.drift_kind == "concept" and not flips else 0.0,
                input_shift=weight if scenario is Scenario.DATA_DRIFT else 0.0,
            )
            # A slice's concept change: its truth flips (from a random stream of its own).
            if flips and weight > 0.0 and change.random() < weight * scenario.flip(features):
                label = 1 - label
            # A shifted category is an input the model sees; a missing feature is lost only
            # in the log, after the model predicted on the full request.
            if (
                scenario is Scenario.CATEGORY_SHIFT
                and change.random() < weight * CATEGORY_SHIFT_SHARE
            ):
                features[SHIFTED_CATEGORY_FEATURE] = SHIFTED_CATEGORY_VALUE
            proba = model.predict_proba_one(features)
            logged: dict[str, float | str | None] = dict(features)
            if scenario is Scenario.MISSING_FEATURE and change.random() < weight:
                logged[MISSING_FEATURE_NAME] = None
            prediction = self._prediction(index, now, logged, proba)
            labels_stopped = scenario is Scenario.LABELS_STOP and change.random() < weight
            delay = self.labels.mean_delay
            if scenario is Scenario.LABELS_LATE:
                delay *= 1.0 + (LATE_FACTOR - 1.0) * weight
            labels = (
                [] if labels_stopped else self._label_arrivals(labelling, prediction, label, delay)
            )
            for arrival in [prediction, *labels]:
                heapq.heappush(pending, (arrival.time, next(order), arrival))
            # Later requests are later, and their early labels precede them by < early_lead.
            while pending and pending[0][0] < now - self.labels.early_lead:
                yield heapq.heappop(pending)[2]
        while pending:
            yield heapq.heappop(pending)[2]

    def _prediction(
        self,
        index: int,
        now: float,
        features: dict[str, float | str | None],
        proba: dict[int, float],
    ) -> Arrival:
        probabilities = {str(c): proba.get(c, 0.0) for c in CLASSES}
        score = probabilities[str(POSITIVE_CLASS)]
        request_id = uuid.uuid5(REQUEST_ID_NAMESPACE, f"{self.seed}/{self.model_id}/{index}")
        event = PredictionEvent(
            request_id=str(request_id),
            model_id=self.model_id,
            model_version=self.model_version,
            timestamp=EPOCH + timedelta(seconds=now),
            features=features,
            prediction=POSITIVE_CLASS if score > 0.5 else 1 - POSITIVE_CLASS,
            score=score,
            probabilities=probabilities,
        )
        return Arrival(now, index, event)

    def _label_arrivals(
        self, rng: random.Random, prediction: Arrival, label: int, mean_delay: float
    ) -> list[Arrival]:
        policy = self.labels
        if rng.random() >= policy.coverage:
            return []
        early = rng.random() < policy.early_prob
        if early:
            at = prediction.time - policy.early_lead * (1.0 - rng.random())
        else:
            at = prediction.time + rng.expovariate(1.0 / mean_delay)
        event = LabelEvent(
            request_id=prediction.event.request_id,
            model_id=self.model_id,
            timestamp=EPOCH + timedelta(seconds=at),
            label=label,
        )
        arrivals = [Arrival(at, prediction.index, event, early=early)]
        if rng.random() < policy.duplicate_prob:
            again = at + rng.expovariate(1.0 / mean_delay)
            arrivals.append(Arrival(again, prediction.index, event, early=early, duplicate=True))
        return arrivals


def _frozen_model(world: LoanApplications, warmup: int) -> Classifier:
    """A Hoeffding tree trained on ``warmup`` draws of the undrifted world, then never again."""
    # A tie threshold lets the tree settle its age splits within a short warm-up.
    model: Classifier = tree.HoeffdingTreeClassifier(grace_period=100, delta=1e-5, tau=0.1)
    for _ in range(warmup):
        model.learn_one(*world.draw())
    return model


def simulate(models: Sequence[ModelTraffic]) -> Iterator[PredictionEvent | LabelEvent]:
    """All models' events merged in simulated arrival order; each ``model.truth`` counts them."""
    by_id = {model.model_id: model for model in models}
    if len(by_id) != len(models):
        raise ValueError("model ids must be unique")
    return _merged(by_id)


def _merged(by_id: dict[str, ModelTraffic]) -> Iterator[PredictionEvent | LabelEvent]:
    streams = [model._arrivals() for model in by_id.values()]
    for arrival in heapq.merge(*streams, key=lambda arrival: arrival.time):
        by_id[arrival.event.model_id].truth.record(arrival)
        yield arrival.event
