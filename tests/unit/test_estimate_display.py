"""The estimated accuracy next to the realised one: metrics, Redis fields, ``state``, report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest
from typer.testing import CliRunner

import stream_app.cli.live
import stream_app.live_state.reader
import stream_app.preflight
from detectors.bank import BankSummary
from detectors.history import HistoryPoint
from stream_app.cli import app
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.writer import LiveStateWriter
from stream_app.metrics import WorkerMetrics
from stream_app.report_chart import ModelSeries, report_figure
from tests.factories import T0
from tests.monitoring import samples

SUMMARY = BankSummary(
    model_id="m",
    model_version="1",
    predictions=2000,
    outcomes=1500,
    error_rate=0.2,
    accuracy=0.8,
    mean_absolute_error=None,
    status="ok",
    last_alert_id=None,
    signals={},
    event_time=T0,
    estimated_accuracy=0.75,
    figures={
        "precision": 0.7,
        "recall": 0.6,
        "estimated_precision": 0.65,
        "estimated_recall": 0.55,
    },
)


def test_estimates_are_gauges_of_their_own_and_vanish_while_undefined() -> None:
    metrics = WorkerMetrics()
    metrics.set_summary(SUMMARY)

    def gauge(name: str) -> float | None:
        exposition = generate_latest(metrics.registry).decode()
        return samples(exposition, name).get((("model", "m"),))

    assert gauge("driftstream_model_estimated_accuracy") == pytest.approx(0.75)
    assert gauge("driftstream_model_estimated_precision") == pytest.approx(0.65)
    assert gauge("driftstream_model_estimated_recall") == pytest.approx(0.55)
    assert gauge("driftstream_model_accuracy") == pytest.approx(0.8)
    metrics.set_summary(replace(SUMMARY, estimated_accuracy=None))
    assert gauge("driftstream_model_estimated_accuracy") is None


def test_the_redis_model_hash_gets_the_estimates() -> None:
    writer = LiveStateWriter(client=None, keys=LiveStateKeys("t:"))  # type: ignore[arg-type]
    writer.set_summary(SUMMARY, T0)
    fields = writer._pending.model["m"]
    assert (fields["accuracy"], fields["estimated_accuracy"]) == ("0.8", "0.75")
    assert (fields["estimated_precision"], fields["estimated_recall"]) == ("0.65", "0.55")


def test_state_shows_the_estimate_next_to_the_accuracy(monkeypatch: pytest.MonkeyPatch) -> None:
    view: dict[str, dict[str, Any]] = {
        "m": {"predictions": "2000", "accuracy": "0.8", "estimated_accuracy": "0.75"},
        "n": {"predictions": "10"},  # no scores (or not calibrated yet): no estimate
        "_pipeline": {},
    }

    @contextlib.contextmanager
    def no_redis(*_args: Any, **_kwargs: Any) -> Iterator[None]:
        yield None

    monkeypatch.setattr(stream_app.cli.live, "login_or_fail", lambda *a, **k: None)
    monkeypatch.setattr(stream_app.preflight, "redis_client", no_redis)
    monkeypatch.setattr(stream_app.live_state.reader, "read_live_state", lambda *a: view)
    result = CliRunner().invoke(app, ["state"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "predictions" in line)
    m, n = (next(line for line in lines if line.startswith(f"│ {model} ")) for model in "mn")
    cells = [cell.strip() for cell in header.strip("┃").split("┃")]
    accuracy, estimate = cells.index("accuracy"), cells.index("est. accuracy")
    assert estimate == accuracy + 1
    assert [cell.strip() for cell in m.strip("│").split("│")][accuracy : estimate + 1] == [
        "0.800",
        "0.750",
    ]
    assert [cell.strip() for cell in n.strip("│").split("│")][accuracy : estimate + 1] == [
        "-",
        "-",
    ]


def test_the_report_draws_the_estimate_dashed_beside_the_accuracy() -> None:
    estimates = np.linspace(0.9, 0.7, 20)
    points = [
        HistoryPoint(
            event_time=T0 + timedelta(minutes=i),
            predictions=100 * i,
            outcomes=80 * i,
            accuracy=0.85,
            precision=None,
            recall=None,
            error_rate=0.15,
            mean_absolute_error=None,
            signals={"estimated_accuracy": float(value)} if i else {},
        )
        for i, value in enumerate(estimates)
    ]
    (panel,) = report_figure([ModelSeries("m", points, [])], title="t").get_axes()
    (line,) = [line for line in panel.get_lines() if str(line.get_label()).startswith("estimated")]
    assert line.get_label() == "estimated accuracy\n(from scores, no labels)"
    assert line.get_linestyle() == "--"
    drawn = np.asarray(line.get_ydata(), dtype=float)
    assert np.isnan(drawn[0])  # before the calibration: a gap
    assert drawn[1:] == pytest.approx(estimates[1:])
