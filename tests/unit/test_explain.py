"""Why a concept alert fired (:mod:`detectors.explain`), held where the truth is known: the
simulator's concept changes in one zipcode, in one salary range and everywhere."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bench.explain import first_explained, names_the_change
from detectors.bank import decode_piece, encode_piece
from detectors.config import BankConfig
from detectors.explain import MAX_FEATURES, SliceExplainer
from detectors.join_buffer import JoinedOutcome
from producers.scenarios import CONCEPT_CATEGORY_VALUE, Scenario
from schemas.events import Explanation, PredictionEvent
from stream_app.alerts_feed import format_alert

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SEEDS = (0, 1, 2)


def explanations(scenario: Scenario) -> list[Explanation]:
    found = [first_explained(scenario, seed) for seed in SEEDS]
    return [alert.explanation for alert in found if alert and alert.explanation]


def test_a_change_in_one_category_names_that_category_first() -> None:
    found = explanations(Scenario.CONCEPT_CATEGORY)
    tops = [(e.slices[0].feature, e.slices[0].value) for e in found if e.slices]
    right = [e for e in found if names_the_change(Scenario.CONCEPT_CATEGORY, e)]
    assert len(right) >= len(SEEDS) - 1, tops


def test_a_change_in_one_numeric_range_names_a_bin_of_that_range_first() -> None:
    found = explanations(Scenario.CONCEPT_RANGE)
    tops = [e.slices[0] for e in found if e.slices]
    inside = [e.slices[0] for e in found if names_the_change(Scenario.CONCEPT_RANGE, e)]
    assert len(inside) >= len(SEEDS) - 1, tops
    assert all(not e.broad for e in found[: len(inside)]) or len(inside) == len(SEEDS)


def test_a_change_everywhere_reads_as_broad() -> None:
    found = explanations(Scenario.CONCEPT_BROAD)
    right = [e for e in found if names_the_change(Scenario.CONCEPT_BROAD, e)]
    assert len(right) >= len(SEEDS) - 1, [e.broad for e in found]


def outcome(i: int, wrong: bool, request_id: str | None = None) -> JoinedOutcome:
    return JoinedOutcome(
        request_id=request_id or str(i),
        model_id="m",
        model_version="1",
        prediction_time=T0 + timedelta(seconds=i),
        label_time=T0 + timedelta(seconds=i),
        prediction=0,
        label=int(wrong),
        task="classification",
        error=float(wrong),
        score=None,
    )


def feed(explainer: SliceExplainer, start: int, stop: int, rng: random.Random) -> None:
    """Predictions of country (3 values, "c" rarer) and amount, each outcome right after;
    from 3,000 on, "c" is wrong four times as often."""
    for i in range(start, stop):
        country = rng.choice("aab" if i % 5 else "c")
        event = PredictionEvent(
            request_id=str(i),
            model_id="m",
            model_version="1",
            timestamp=T0 + timedelta(seconds=i),
            features={"country": country, "amount": rng.uniform(0, 100)},
            prediction=0,
        )
        explainer.on_prediction(event, lambda signal, value: None)
        rate = 0.8 if country == "c" and i >= 3000 else 0.2
        explainer.on_outcome(outcome(i, rng.random() < rate), lambda signal, value: None)


def test_contributions_of_one_feature_add_up_to_the_change_split_into_error_and_share() -> None:
    explainer = SliceExplainer(window=1000, reference=200)
    feed(explainer, 0, 3400, random.Random(5))
    explanation = explainer.explain("error_rate", observed=3400, after=400)
    assert explanation is not None
    assert not explanation.broad
    countries = [s for s in explanation.slices if s.feature == "country"]
    assert countries[0].value == "c"
    assert {s.value for s in countries} <= {"a", "b", "c"}
    for part in explanation.slices:
        assert part.contribution == pytest.approx(part.from_error + part.from_share, abs=2e-6)
    # the three countries carry the whole change of the error (the ones left out carry <= 0)
    ring = explainer._rings["classification"]
    ring_after = ring.error[ring.seq > 3000]
    total = sum(s.contribution for s in countries)
    assert total <= float(ring_after.mean()) - 0.2 + 0.05


def test_restored_mid_stream_it_explains_the_same_and_its_state_stays_under_64_kib() -> None:
    """More features than are explained, half of them categories of 62 characters (80 values),
    outcomes 30 predictions late: the largest state there is at the defaults."""
    rng = random.Random(9)
    explainer = SliceExplainer.for_bank(BankConfig(), arrival_order=False)
    restored: SliceExplainer | None = None
    names = [f"f{j:02d}" for j in range(MAX_FEATURES + 5)]
    largest = 0
    positive: list[bool] = []
    for i in range(6000):
        features: dict[str, float | str | None] = {
            name: ("x" * 60 + str(rng.randrange(80))) if j % 2 else rng.gauss(0, 1)
            for j, name in enumerate(names)
        }
        event = PredictionEvent(
            request_id=f"request-{i:08d}",
            model_id="m",
            model_version="1",
            timestamp=T0 + timedelta(seconds=i),
            features=features,
            prediction=0,
        )
        positive.append(features["f00"] > 0)  # type: ignore[operator]
        late = None
        if i >= 30:
            wrong = rng.random() < (0.6 if i > 5000 and positive[i - 30] else 0.1)
            late = outcome(i - 30, wrong, f"request-{i - 30:08d}")
        for each in (explainer, restored):
            if each is not None:
                each.on_prediction(event, lambda signal, value: None)
                if late is not None:
                    each.on_outcome(late, lambda signal, value: None)
        if i == 4000:
            restored = SliceExplainer.from_state(
                decode_piece(explainer.name, encode_piece(explainer.name, explainer.state()))
            )
        if i % 500 == 0:
            largest = max(largest, len(encode_piece(explainer.name, explainer.state())))
    assert largest <= 64 * 1024, largest
    assert restored is not None
    expected = explainer.explain("error_rate", observed=5970, after=900)
    assert expected is not None
    assert expected.slices[0].feature == "f00"
    assert restored.explain("error_rate", observed=5970, after=900) == expected
    assert restored.state() == explainer.state()


def test_the_alert_line_says_where_the_error_rose() -> None:
    alert = first_explained(Scenario.CONCEPT_CATEGORY, 0)
    assert alert is not None
    line = format_alert(alert)
    assert f"where: zipcode={CONCEPT_CATEGORY_VALUE} error" in line, line
