"""bench.core's helpers and the hand-written loop it measures the replay against."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import baseline_loop
from bench.core import (
    LOOP,
    REPLAY,
    Counts,
    ManyModels,
    Measured,
    ProfileRow,
    Split,
    StateSaving,
    Stream,
    Timing,
    counts_of,
    loop_decode,
    many_models,
    many_saving,
    render,
    state_saving,
    timed_run,
    wide_models_env,
    write_wide,
)
from pipeline.backtest import Backtest
from producers.event_file import EventFileWriter, read_event_file
from producers.simulator import ModelTraffic, simulate


def test_the_loop_joins_what_the_replay_joins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventFileWriter(path)
    for event in simulate([ModelTraffic("m", "abrupt", n_predictions=400, seed=3, warmup=200)]):
        writer.send(event)  # late, early and duplicate labels
    written = writer.close().sent
    backtest = Backtest(ttl_seconds=3600, max_pending=100_000)
    for event in read_event_file(path):
        backtest.process(event)
    joined = sum(model.counts.joined for model in backtest.summary().models.values())
    baseline_loop.main(str(path))
    counts = counts_of(LOOP, capsys.readouterr().out)
    assert (counts.events, counts.pairs) == (written, joined)
    assert loop_decode(path) == written


def test_wide_stream_has_200_numeric_features_and_every_label(tmp_path: Path) -> None:
    path = tmp_path / "wide.jsonl"
    assert write_wide(path, 10) == 20
    events = list(read_event_file(path))
    numeric = [v for v in events[0].features.values() if isinstance(v, float)]  # type: ignore[union-attr]
    assert len(numeric) == 200
    assert [type(e).__name__ for e in events[:2]] == ["PredictionEvent", "LabelEvent"]
    assert '"max_feature_signals": 201' in wide_models_env()["DRIFTSTREAM_DETECTORS__MODELS"]


def test_timed_run_counts_the_childs_cpu_and_reports_a_failure() -> None:
    timing = timed_run([sys.executable, "-c", "print(sum(range(3_000_000)))"], {})
    assert timing.output.strip() == str(sum(range(3_000_000)))
    assert timing.cpu > 0
    assert timing.wall >= timing.cpu / 2
    with pytest.raises(RuntimeError, match="exited with 3"):
        timed_run([sys.executable, "-c", "import sys; sys.exit(3)"], {})


def _measured(wall: float, cpu: float, events: int) -> Measured:
    return Measured([Timing(wall, cpu, "")], Counts(events, events // 2, 1))


def test_render_gives_loop_over_replay_ratios(tmp_path: Path) -> None:
    narrow = Stream("narrow", tmp_path / "n.jsonl", 1000, {})
    results = {
        "narrow": {
            REPLAY: _measured(2.0, 1.0, 1000),
            LOOP: _measured(3.0, 1.5, 1000),
        }
    }
    section = render(
        [narrow],
        results,
        Split(20e-6, 5e-6, 100e-6, 300e-6),
        ([ProfileRow("f (a.py:1)", 2.0, 1e-5, 0.5)], 2e-5),
        ManyModels(10, 1000, 0.5, 0.5, 2048.0, 1024.0, 4096.0, 0),
        [
            StateSaving(
                "one model", 20000, 2000, [0.004, 0.008], [9000, 9000], [3, 3], 70_000, [0.5, 0.5]
            ),
            StateSaving(
                "many models", 20000, 2000, [0.5, 0.3], [10**6] * 2, [9, 9], 900, [0.2, 0.2]
            ),
        ],
        1,
        "python -m bench.core",
        "0.00, 0.00, 0.00",
    )
    assert section.startswith("## Detection core\n")
    assert "narrow 1.50 wall, 1.50 CPU" in section
    assert "| f (a.py:1) | 2 | 10.00 | 50.0% |" in section
    assert "one model: 6.0% of a core, not met; largest piece 70,000 bytes, not met" in section
    assert "many models: 400.0% of a core, not met; largest piece 900 bytes, met" in section
    row = "| many models | 20,000 | 400.00 (300.00-500.00) | 400.0% | 200 | 9 | 1,000,000 | 900 |"
    assert row in section


def test_state_saving_measures_the_pieces_of_commits_that_reached_the_detectors() -> None:
    saving = state_saving(20, commits=1)
    assert saving.pairs_per_commit == 2000
    # a commit's pairs move event time past the lateness: every feature's signal changed
    assert saving.pieces[0] > 20
    assert 0 < saving.largest < 64 * 1024


def test_many_models_tells_the_joins_memory_from_the_models() -> None:
    many = many_models(20, 30)
    assert many.pairs == 600
    # every pair's done marker stays until its TTL: the join holds a share, not all of it
    assert 0 < many.join_per_model < many.traced_per_model


def test_many_saving_counts_the_commits_after_the_models_were_made() -> None:
    saving = many_saving(100, commits=1)
    assert saving.pairs_per_commit == 2000
    # the commit that made every signal writes about 53 pieces a model; later ones about 33
    assert 2 * 100 <= saving.pieces[0] < 40 * 100
    assert 0 < saving.largest < 64 * 1024
    quiet = many_saving(400, commits=1, pairs_per_second=1000)  # a request a model each 0.4 s
    assert quiet.pairs_per_commit == 100
    # every model sent and was made before: each of the 100 pairs touches about 33 pieces
    assert 20 * 100 <= quiet.pieces[0] < 40 * 100
