"""Synthetic traffic with the simulator's shape, fast enough to pre-load millions of events.

The seeded simulator (``producers/simulator.py``) runs a Hoeffding tree per request and makes
about 8,000 events/s; the streaming benchmarks need a million events in seconds. A
:class:`Request` here is one prediction and its label, already encoded as the producers encode
them: the simulator's loan features (eight numbers and a zip code, or more numbers), a 0/1
prediction with score and probabilities, a label that is wrong with the rate of the request's
model at that point. Error rates cycle through ``Shape.error_rates`` every ``segment``
outcomes of a model, so a shape with two rates has abrupt concept drifts at known requests.

>>> shape = Shape(models=2, error_rates=(0.0, 1.0), segment=2)
>>> from schemas.codec import decode
>>> from schemas.events import LabelEvent, PredictionEvent
>>> requests = list(generate(shape, 8))
>>> [r.model_id for r in requests[:3]]
['m0', 'm1', 'm0']
>>> pairs = [(decode(PredictionEvent, r.prediction), decode(LabelEvent, r.label)) for r in requests]
>>> [p.prediction != label.label for p, label in pairs]
[False, False, False, False, True, True, True, True]
>>> len(pairs[0][0].features), pairs[0][0].request_id == requests[0].key.decode()
(9, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

LOAN_FEATURES = (
    ("salary", 20_000.0, 150_000.0),
    ("commission", 0.0, 75_000.0),
    ("age", 20.0, 80.0),
    ("elevel", 0.0, 4.0),
    ("car", 1.0, 20.0),
    ("hvalue", 0.0, 900_000.0),
    ("hyears", 1.0, 30.0),
    ("loan", 0.0, 500_000.0),
)
"""The simulator's numeric loan features and their ranges (river's Agrawal generator)."""


@dataclass(frozen=True)
class Shape:
    """What the traffic looks like.

    ``numeric_features`` counts the numeric features (the loan ones first, then ``x8``, ``x9``,
    ...); every prediction also has the categorical ``zipcode``. Event time advances
    ``spacing_us`` microseconds per request from ``start``; a label is stamped
    ``label_delay_us`` after its prediction.
    """

    models: int = 4
    numeric_features: int = len(LOAN_FEATURES)
    error_rates: tuple[float, ...] = (0.05,)
    segment: int = 5_000
    seed: int = 7
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    spacing_us: int = 100
    label_delay_us: int = 50


@dataclass(frozen=True, slots=True)
class Request:
    """One request: its key (the request id), and its encoded prediction and label."""

    index: int
    model_id: str
    key: bytes
    prediction: bytes
    label: bytes
    error_rate: float


def _features(rng: random.Random, count: int) -> str:
    parts = [f'"{name}":{rng.uniform(low, high):.2f}' for name, low, high in LOAN_FEATURES[:count]]
    parts += [f'"x{k}":{rng.gauss(0.0, 1.0):.4f}' for k in range(len(LOAN_FEATURES), count)]
    parts.append(f'"zipcode":"zip{rng.randrange(9)}"')
    return ",".join(parts)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate(shape: Shape, count: int, first: int = 0) -> Iterator[Request]:
    """``count`` requests from index ``first``, the same bytes for the same shape every time."""
    rng = random.Random(f"{shape.seed}/{first}")
    for index in range(first, first + count):
        model_id = f"m{index % shape.models}"
        outcome_number = index // shape.models
        rates = shape.error_rates
        error_rate = rates[(outcome_number // shape.segment) % len(rates)]
        request_id = f"{shape.seed:08x}-0000-4000-8000-{index:012x}"
        moment = shape.start + timedelta(microseconds=index * shape.spacing_us)
        score = rng.random()
        predicted = int(score > 0.5)
        label = predicted if rng.random() >= error_rate else 1 - predicted
        prediction = (
            f'{{"schema_version":1,"request_id":"{request_id}","model_id":"{model_id}",'
            f'"model_version":"1","timestamp":"{_stamp(moment)}",'
            f'"features":{{{_features(rng, shape.numeric_features)}}},"prediction":{predicted},'
            f'"score":{score!r},"probabilities":{{"0":{1.0 - score!r},"1":{score!r}}}}}'
        )
        labelled = moment + timedelta(microseconds=shape.label_delay_us)
        label_json = (
            f'{{"schema_version":1,"request_id":"{request_id}","model_id":"{model_id}",'
            f'"timestamp":"{_stamp(labelled)}","label":{label}}}'
        )
        yield Request(
            index,
            model_id,
            request_id.encode(),
            prediction.encode(),
            label_json.encode(),
            error_rate,
        )


def request_index(shape: Shape, request_id: str) -> int | None:
    """The index of a request of this shape from its id (``None`` for another shape's).

    >>> shape = Shape(seed=3)
    >>> request_index(shape, next(generate(shape, 1, first=41)).key.decode())
    41
    >>> request_index(Shape(seed=4), next(generate(shape, 1)).key.decode()) is None
    True
    """
    prefix, _, index = request_id.rpartition("-")
    return int(index, 16) if prefix == f"{shape.seed:08x}-0000-4000-8000" else None


def index_at(shape: Shape, prediction_time: datetime) -> int | None:
    """The index of the request whose prediction is stamped ``prediction_time``, if any.

    >>> shape = Shape(spacing_us=250)
    >>> index_at(shape, shape.start + timedelta(microseconds=2500)), index_at(shape, shape.start)
    (10, 0)
    """
    offset = (prediction_time - shape.start) // timedelta(microseconds=1)
    index, rest = divmod(offset, shape.spacing_us)
    return index if rest == 0 and index >= 0 else None
