"""The benchmarks' pure helpers: the markdown file, synthetic traffic, profile folding, parsing."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

from bench.data_quality import SHAPED, T0, shaped_events
from bench.harness import cpu_seconds
from bench.profile import aggregate, category
from bench.results import percentile, table, write_section
from bench.traffic import Shape, generate, index_at, request_index
from producers.simulator import ModelTraffic, simulate
from schemas.codec import decode, encode
from schemas.events import LabelEvent, PredictionEvent
from stream_app.local.services.process import wait_until


def test_write_section_appends_then_replaces_only_its_own(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    write_section(path, "## A\n\nfirst a\n")
    write_section(path, "## B\n\nfirst b\n")
    write_section(path, "## A\n\nsecond a\n")
    assert path.read_text() == "# Benchmarks\n\n## A\n\nsecond a\n\n## B\n\nfirst b\n"


def test_table_aligns_numeric_columns() -> None:
    assert table(["x", "n"], [("a", 1)], numeric=".r") == ["| x | n |", "|---|---:|", "| a | 1 |"]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        500.0,
        990.0,
        1000.0,
    )


def test_traffic_is_valid_events_of_the_simulators_size() -> None:
    requests = list(generate(Shape(), 500))
    predictions = [decode(PredictionEvent, r.prediction) for r in requests]
    labels = [decode(LabelEvent, r.label) for r in requests]
    assert all(
        p.request_id == label.request_id == r.key.decode()
        for p, label, r in zip(predictions, labels, requests, strict=True)
    )
    assert all(label.timestamp > p.timestamp for p, label in zip(predictions, labels, strict=True))
    simulated = list(simulate([ModelTraffic("m", "stable", n_predictions=200, seed=1)]))
    for model in (PredictionEvent, LabelEvent):
        ours = statistics.mean(
            len(r.prediction if model is PredictionEvent else r.label) for r in requests
        )
        theirs = statistics.mean(len(encode(e)) for e in simulated if isinstance(e, model))
        assert abs(ours - theirs) / theirs < 0.1, (model, ours, theirs)


def test_traffic_error_rates_follow_the_segments() -> None:
    shape = Shape(models=2, error_rates=(0.1, 0.4), segment=5_000)
    requests = list(generate(shape, 40_000))
    for rate in shape.error_rates:
        pairs = [
            (decode(PredictionEvent, r.prediction), decode(LabelEvent, r.label))
            for r in requests
            if r.error_rate == rate
        ]
        wrong = sum(p.prediction != label.label for p, label in pairs) / len(pairs)
        assert abs(wrong - rate) < 0.02


def test_requests_are_found_again_by_id_and_prediction_time() -> None:
    shape = Shape(seed=11, spacing_us=333)
    for request in generate(shape, 50, first=1_000):
        event = decode(PredictionEvent, request.prediction)
        assert request_index(shape, event.request_id) == request.index
        assert index_at(shape, event.timestamp) == request.index
    assert index_at(shape, shape.start.replace(microsecond=1)) is None


def test_profile_charges_library_internals_to_their_caller() -> None:
    stack = [
        "_run_module_as_main (<frozen runpy>:198)",
        "_process (stream_app/runtimes/kafka/worker.py:99)",
        "decode_observation (pipeline/observations.py:33)",
        "TypeAdapter.validate_json (pydantic/type_adapter.py:466)",
    ]
    assert category(stack) == "observations encode/decode"
    assert category(stack[:2]) == "the runtime's own lines"
    lines = [";".join(stack) + " 7", "Thread._bootstrap (threading.py:1002);x (aiokafka/a.py:1) 2"]
    profile = aggregate(lines)
    assert (profile.main_total, profile.other_threads) == (7, 2)
    assert profile.functions == {"TypeAdapter.validate_json (pydantic/type_adapter.py)": 7}


def test_shaped_streams_send_at_their_rates() -> None:
    """The surge stream is 100 predictions/s, then 500/s from its change at 200 s."""
    surge = next(s for s in SHAPED if s.name.startswith("surge"))
    seconds = [(e.timestamp - T0).total_seconds() for e in shaped_events(surge, seed=0)]
    before = sum(100 <= t < 200 for t in seconds) / 100
    after = sum(200 <= t < 240 for t in seconds) / 40
    assert 90 < before < 110
    assert 450 < after < 550


def test_cpu_seconds_counts_the_children_a_worker_started(tmp_path: Path) -> None:
    burner = tmp_path / "burner.py"  # 0.3 s of CPU, then waits
    burner.write_text(
        "import time\nend = time.process_time() + 0.3\n"
        "while time.process_time() < end:\n    pass\ntime.sleep(60)\n"
    )
    start = f"import subprocess, sys; subprocess.run([sys.executable, {str(burner)!r}])"
    parent = subprocess.Popen([sys.executable, "-c", start], start_new_session=True)
    try:
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
        assert wait_until(lambda: children.read_text().split() != [], 10, 0.01)
        child = int(children.read_text().split()[0])
        assert wait_until(lambda: own_cpu(child) >= 0.3, 10, 0.01)
        assert own_cpu(parent.pid) < 0.2 <= 0.3 <= cpu_seconds(parent.pid)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def own_cpu(pid: int) -> float:
    """A process's own user + system CPU seconds, its children left out."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
