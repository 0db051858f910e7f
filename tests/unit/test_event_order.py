"""Each model's observations reach its bank in event-time order behind a watermark: any arrival
order within the lateness gives the same sequence, later ones are applied at once and counted,
a quiet kind lets go, and a crash with re-reading from the oldest held offset applies each
observation exactly once."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from detectors.bank import DetectorBank, decode_piece, encode_piece
from detectors.config import DetectorConfig
from detectors.join_buffer import JoinedOutcome
from pipeline.detect import DETECT_PIECE, DetectProcessor, observation_key, split_state_key
from pipeline.effects import Effects, InputRecord, Observation
from pipeline.event_order import EventTimeOrder
from pipeline.observations import encode_observation
from tests.factories import outcome, prediction

Applied = list[tuple[str, str]]
"""What reached the bank, in order: (kind, request id)."""


def stream(n: int = 300) -> list[Observation]:
    """A model's predictions one a second, each outcome three seconds after its prediction
    (wrong from the middle on, so the error-rate detectors fire), in event-time order."""
    observations: list[Observation] = [prediction(f"r{i}", i) for i in range(n)]
    observations += [outcome(f"r{i}", i + 3, wrong=i >= n // 2) for i in range(n)]
    return sorted(observations, key=observation_key)


def jostled(observations: list[Observation], within: float, seed: int) -> list[Observation]:
    """``observations`` in an arrival order that moves each by less than ``within`` seconds."""
    rng = random.Random(seed)
    arrival = [observation_key(o)[0].timestamp() + rng.uniform(0, within) for o in observations]
    return [o for _, o in sorted(zip(arrival, observations, strict=True), key=lambda p: p[0])]


def kind(observation: Observation) -> str:
    return "O" if isinstance(observation, JoinedOutcome) else "P"


def processor(
    applied: Applied,
    lateness: float = 5.0,
    load: Callable[[str], Mapping[str, bytes]] = lambda _m: {},
    clock: Callable[[], float] = lambda: 0.0,
    hold: bool = True,
) -> DetectProcessor:
    def note(_bank: DetectorBank, observations: list[Observation]) -> None:
        applied.extend((kind(o), o.request_id) for o in observations)

    return DetectProcessor(
        DetectorConfig(),
        lateness_seconds=lateness,
        load=load,
        on_applied=note,
        clock=clock,
        hold=hold,
    )


def record(observation: Observation, offset: int) -> InputRecord:
    return InputRecord("observations", 0, offset, b"m", encode_observation(observation))


def counted(effects: Effects, name: str) -> int:
    return sum(n for (_m, counter, _s), n in effects.counts.items() if counter == name)


def run(observations: list[Observation], lateness: float = 5.0) -> tuple[Applied, Effects]:
    applied: Applied = []
    detect, effects = processor(applied, lateness), Effects()
    for offset, observation in enumerate(observations):
        detect.process(record(observation, offset), effects)
    detect.release_all(effects)
    return applied, effects


def per_kind(applied: Applied, which: str) -> list[str]:
    return [request for k, request in applied if k == which]


@given(st.integers(0, 10_000))
def test_any_arrival_within_the_lateness_gives_the_replay_order_and_alerts(seed: int) -> None:
    ordered, in_order = run(stream())
    applied, effects = run(jostled(stream(), within=4.0, seed=seed))
    for which in "PO":  # each kind in event-time order, as in order
        assert per_kind(applied, which) == per_kind(ordered, which)
    assert counted(effects, "late_observations") == 0
    assert in_order.alerts, "the shift should raise an alert"
    assert [a.alert_id for a in effects.alerts] == [a.alert_id for a in in_order.alerts]


def test_later_than_the_lateness_is_applied_at_once_and_counted_never_dropped() -> None:
    observations = stream(100)
    straggler = observations.pop(10)  # a prediction at second 7, read after everything
    applied, effects = run([*observations, straggler], lateness=5.0)
    assert counted(effects, "late_observations") == 1
    assert len(applied) == 200
    late = (kind(straggler), straggler.request_id)
    assert applied.count(late) == 1
    assert applied.index(late) > applied.index(("P", "r90")), "applied when it came, not before"
    applied, effects = run(jostled(stream(100), within=4.0, seed=1), lateness=0.0)
    assert 0 < counted(effects, "late_observations") < 200, "no hold: each inversion is late"


def test_without_a_hold_each_is_applied_as_it_comes_and_only_the_far_behind_counted() -> None:
    observations = jostled(stream(100), within=4.0, seed=2)
    straggler = observations.pop(10)
    applied: Applied = []
    detect, effects = processor(applied, hold=False), Effects()  # the Faust runtime's way
    for offset, observation in enumerate([*observations, straggler]):
        detect.process(record(observation, offset), effects)
        assert detect.oldest_held(0) is None
    assert applied == [(kind(o), o.request_id) for o in [*observations, straggler]]
    assert counted(effects, "late_observations") == 1


def test_a_quiet_kind_lets_go_after_the_lateness_in_wall_time() -> None:
    now = [0.0]
    applied: Applied = []
    detect, effects = processor(applied, clock=lambda: now[0]), Effects()
    for offset, observation in enumerate(stream(20)):
        detect.process(record(observation, offset), effects)
    held = 40 - len(applied)
    assert held > 0
    assert detect.oldest_held(0) is not None
    now[0] = 4.9
    detect.release_quiet(effects)
    assert 40 - len(applied) == held
    now[0] = 5.0
    detect.release_quiet(effects)
    assert len(applied) == 40
    assert detect.oldest_held(0) is None


def test_a_kind_that_goes_on_holds_while_the_quiet_one_lets_go_and_lets_go_when_quiet() -> None:
    """Each kind lets go after its own last observation (a model is looked at when its time
    comes, then again when its busy kind's does)."""
    now = [0.0]
    applied: Applied = []
    detect, effects = processor(applied, clock=lambda: now[0]), Effects()
    predictions = [o for o in stream(40) if kind(o) == "P"]
    outcomes = [o for o in stream(40) if kind(o) == "O"]
    arrivals = [*predictions[:20], *outcomes[:20]]  # both kinds at wall time 0
    for offset, observation in enumerate(arrivals):
        detect.process(record(observation, offset), effects)
    now[0] = 3.0  # the predictions go on
    for offset, observation in enumerate(predictions[20:], start=len(arrivals)):
        detect.process(record(observation, offset), effects)

    def counts() -> tuple[int, int]:
        return sum(k == "P" for k, _ in applied), sum(k == "O" for k, _ in applied)

    held = counts()
    assert held[0] < 40
    assert held[1] < 20
    now[0] = 5.0
    detect.release_quiet(effects)
    assert counts() == (held[0], 20), "the outcomes were quiet for the lateness: let go"
    now[0] = 7.9
    detect.release_quiet(effects)
    assert counts() == (held[0], 20)
    now[0] = 8.0
    detect.release_quiet(effects)
    assert counts() == (40, 20), "the predictions' turn"
    assert detect.oldest_held(0) is None


def test_a_model_revoked_and_back_lets_go_after_its_new_observations() -> None:
    now = [0.0]
    applied: Applied = []
    detect, effects = processor(applied, clock=lambda: now[0]), Effects()
    observations = stream(20)
    for offset, observation in enumerate(observations):
        detect.process(record(observation, offset), effects)
    before = len(applied)
    detect.revoke([0])  # what it held is read again by whoever gets the partition
    now[0] = 3.0
    for offset, observation in enumerate(observations[before:], start=before):
        detect.process(record(observation, offset), effects)
    held = len(applied)
    assert held < 40
    now[0] = 5.0
    detect.release_quiet(effects)
    assert len(applied) == held, "quiet since 3 s only"
    now[0] = 8.0
    detect.release_quiet(effects)
    assert len(applied) == 40


@given(st.integers(1, 599), st.integers(0, 10_000))
def test_a_crash_reread_from_the_oldest_held_offset_applies_each_once(
    crash_at: int, seed: int
) -> None:
    arrivals = jostled(stream(), within=8.0, seed=seed)  # some are late too
    whole, _ = run(arrivals)
    applied: Applied = []
    first, effects = processor(applied), Effects()
    for offset, observation in enumerate(arrivals[:crash_at]):
        first.process(record(observation, offset), effects)
    pieces = {split_state_key(change.key)[1]: change.value for change in first.take_state_changes()}
    held = first.oldest_held(0)
    start = crash_at if held is None else held  # what a transactional runtime committed
    second = processor(applied, load=lambda _m: pieces)  # type: ignore[arg-type,return-value]
    for offset in range(start, len(arrivals)):
        second.process(record(arrivals[offset], offset), effects)
    second.release_all(effects)
    assert sorted(applied) == sorted(whole), "each observation applied once"
    assert per_kind(applied, "O") == per_kind(whole, "O")
    still_held = sum(order.held for order in first.models["m"].orders.values())
    assert counted(effects, "replayed_observations") == crash_at - start - still_held


def test_the_order_forgets_released_offsets_without_a_commit() -> None:
    """The replay never asks for the oldest held offset: what was released is forgotten as it
    goes (a long replay held two integers per observation before)."""
    order: EventTimeOrder[int] = EventTimeOrder(timedelta(0))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(10_000):
        order.push(t0 + timedelta(seconds=i), str(i), i, i)
    assert len(order._offsets) + len(order._gone) <= 2


def test_marks_saved_with_the_kinds_as_booleans_restore_as_named_kinds() -> None:
    """A ``detect`` piece written before the kinds were named keyed its marks by ``False``
    (predictions) and ``True`` (outcomes): it restores the same marks."""
    first, effects = processor([]), Effects()
    for offset, observation in enumerate(stream(120)):
        first.process(record(observation, offset), effects)
    first.release_all(effects)
    pieces = {split_state_key(c.key)[1]: c.value or b"" for c in first.take_state_changes()}
    own = decode_piece(DETECT_PIECE, pieces[DETECT_PIECE])
    marks = own["marks"]
    assert set(marks) == {"prediction", "outcome"}
    own["marks"] = {False: marks["prediction"], True: marks["outcome"]}
    old = {**pieces, DETECT_PIECE: encode_piece(DETECT_PIECE, own)}
    for saved in (pieces, old):
        second = processor([], load=lambda _m, saved=saved: saved)  # type: ignore[misc]
        second.process(record(stream(120)[0], 0), effects)  # read again: restores, skipped
        restored = second.models["m"].orders
        assert {k: o.marks() for k, o in restored.items()} == {
            k: o.marks() for k, o in first.models["m"].orders.items()
        }
