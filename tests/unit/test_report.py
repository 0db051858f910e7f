"""The report figure, checked on its matplotlib objects (axes, lines, legends), not on pixels."""

from __future__ import annotations

import math
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from detectors.history import HistoryPoint
from pipeline.backtest import Backtest
from producers.simulator import ModelTraffic, simulate
from schemas.events import DriftAlert
from stream_app.alerts_feed import format_explanation, slice_name
from stream_app.report_chart import (
    CONTRIBUTION_LABEL,
    MAX_SIGNAL_PANELS,
    MAX_SLICE_BARS,
    ModelSeries,
    alerted_signals,
    baseline_threshold,
    days,
    report_figure,
    write_report,
)
from tests.event_examples import ALERT, EXPLANATION, SLICE
from tests.factories import T0


@pytest.fixture(scope="module")
def series() -> list[ModelSeries]:
    """A replay of one stable, one abrupt and one data-drift model, with history."""
    traffic = [
        ModelTraffic("stable", "stable", 3000, seed=3),
        ModelTraffic("fraud", "abrupt", 3000, seed=3),
        ModelTraffic("churn", "data-drift", 3000, seed=3),
    ]
    backtest = Backtest(ttl_seconds=600, max_pending=100_000, history_every=50)
    for event in simulate(traffic):
        backtest.process(event)
    return [
        ModelSeries(
            model.model_id,
            backtest.history[model.model_id],
            [a for a in backtest.alerts if a.model_id == model.model_id],
            model.truth.drift_start_time,
            str(model.truth.scenario),
        )
        for model in traffic
    ]


def legend_texts(axes: Axes) -> list[str]:
    legend = axes.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def xy(line: Line2D) -> tuple[list[float], list[float]]:
    """A line's points as floats (dates as matplotlib's date numbers)."""
    data = np.asarray(line.get_xydata(), dtype=float)
    return [float(x) for x in data[:, 0]], [float(y) for y in data[:, 1]]


def vertical_lines_at(axes: Axes) -> list[float]:
    """The x positions of the vertical lines (alerts, drift start) of ``axes``."""
    return [x[0] for x, _ in map(xy, axes.get_lines()) if len(x) == 2 and x[0] == x[1]]


def is_explanation(axes: Axes) -> bool:
    """Whether ``axes`` is a model's explanation bars (the others: panels over event time)."""
    return "where the error changed" in axes.get_title()


def time_panels(figure: Figure) -> list[Axes]:
    return [axes for axes in figure.get_axes() if not is_explanation(axes)]


def explanation_panels(figure: Figure) -> list[Axes]:
    return [axes for axes in figure.get_axes() if is_explanation(axes)]


def bars(axes: Axes) -> list[Rectangle]:
    return [patch for patch in axes.patches if isinstance(patch, Rectangle)]


def explained(minutes: int, slices: int, *, broad: bool = False, **fields: Any) -> DriftAlert:
    """A concept alert ``minutes`` after T0 whose explanation has ``slices`` slices, the
    first of a value named after the minute, contributions falling from 0.09."""
    parts = [
        SLICE | {"value": f"at{minutes}-{i}", "contribution": round(0.09 - 0.01 * i, 3)}
        for i in range(slices)
    ]
    return DriftAlert.model_validate(
        ALERT
        | {
            "alert_id": f"fraud:{minutes}",
            "detected_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "explanation": EXPLANATION | {"slices": parts, "broad": broad},
        }
        | fields
    )


def test_a_group_of_panels_per_model_with_labelled_axes_and_legends(
    series: list[ModelSeries],
) -> None:
    figure = report_figure(series, title="three models")
    signals = {s.model_id: alerted_signals(s.alerts) for s in series}
    assert signals["stable"] == signals["fraud"] == []
    assert signals["churn"], "the data-drift model alerted on no data signal"
    assert all(name.startswith("feature:") for name in signals["churn"])
    assert [a.get_title().split(":")[0] for a in explanation_panels(figure)] == ["fraud"]
    axes = time_panels(figure)
    assert len(axes) == 3 + len(signals["churn"])
    stable, fraud, churn = axes[0], axes[1], axes[2]
    assert figure.get_suptitle() == "three models"
    for model, panel in zip(series, (stable, fraud, churn), strict=True):
        assert panel.get_title().startswith(f"{model.model_id}: {len(model.alerts)} alert")
        assert panel.get_ylabel() == "rolling rate\n(recent outcomes)"
        texts = legend_texts(panel)
        assert texts[:3] == ["accuracy", "precision", "recall"]
        assert texts[3].startswith("threshold ")
    assert "alert (concept)" not in legend_texts(stable)
    assert {"alert (concept)", "true drift start"} <= set(legend_texts(fraud))
    assert {"alert (data)", "true drift start"} <= set(legend_texts(churn))
    for panel, name in zip(axes[3:], signals["churn"], strict=True):
        assert panel.get_ylabel().replace("\n", "") == name
        assert legend_texts(panel)[0] == "rolling mean"
    assert [a.get_xlabel() for a in axes] == ["event time (UTC)"] * 2 + [""] * (len(axes) - 3) + [
        "event time (UTC)"
    ]


def test_lines_follow_the_points_and_mark_each_alert(series: list[ModelSeries]) -> None:
    fraud = series[1]
    figure = report_figure([fraud], title="fraud")
    (panel,) = time_panels(figure)
    accuracy = panel.get_lines()[0]
    assert xy(accuracy) == (
        days([p.event_time for p in fraud.points]),
        [p.accuracy for p in fraud.points],
    )
    threshold = baseline_threshold(fraud)
    assert fraud.drift_start is not None
    healthy = [p.accuracy for p in fraud.points if p.event_time < fraud.drift_start]
    assert threshold is not None
    assert fraud.points[-1].accuracy is not None
    assert fraud.points[-1].accuracy < threshold < statistics.mean(a for a in healthy if a)
    assert xy(panel.get_lines()[3])[1] == [threshold, threshold]
    expected = days([*sorted(a.detected_at for a in fraud.alerts), fraud.drift_start])
    assert vertical_lines_at(panel) == pytest.approx(expected)


def test_a_given_threshold_is_drawn_as_given(series: list[ModelSeries]) -> None:
    (panel,) = report_figure(series[:1], title="t", threshold=0.7).get_axes()
    assert "threshold 0.70" in legend_texts(panel)


def test_undefined_rates_are_gaps_and_regression_shows_the_error() -> None:
    def point(second: int, accuracy: float | None, mae: float | None) -> HistoryPoint:
        return HistoryPoint(
            T0 + timedelta(seconds=second), second, second, accuracy, None, None, None, mae, {}
        )

    classifier = ModelSeries("c", [point(i, 0.9, None) for i in range(4)], [])
    regression = ModelSeries("r", [point(i, None, 0.5 * i) for i in range(4)], [])
    first, second = report_figure([classifier, regression], title="t").get_axes()
    precision = first.get_lines()[1]
    assert all(math.isnan(v) for v in xy(precision)[1])
    assert second.get_ylabel() == "mean absolute error\n(recent outcomes)"
    assert legend_texts(second) == ["mean absolute error"]


def test_at_most_a_few_signal_panels_per_model(series: list[ModelSeries]) -> None:
    churn = series[2]
    storm = [
        alert.model_copy(update={"signal": f"feature:f{i}"})
        for i, alert in enumerate(list(churn.alerts) * 5)
    ]
    assert len(alerted_signals(storm)) == MAX_SIGNAL_PANELS
    figure = report_figure([ModelSeries("churn", churn.points, storm)], title="t")
    assert len(figure.get_axes()) == 1 + MAX_SIGNAL_PANELS


def test_write_report_saves_a_png(series: list[ModelSeries], tmp_path: Path) -> None:
    out = write_report(series, tmp_path / "sub" / "report.png", title="demo")
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert out.stat().st_size > 10_000


def test_empty_history_is_said_not_drawn() -> None:
    model = ModelSeries("new", [], [])
    (panel,) = report_figure([model], title="t").get_axes()
    assert [t.get_text() for t in panel.texts] == ["no history points"]


@pytest.mark.parametrize("slices", [3, MAX_SLICE_BARS + 2])
def test_the_latest_explained_alert_shows_its_top_slices_as_bars(slices: int) -> None:
    points = [
        HistoryPoint(T0 + timedelta(minutes=m), m, m, 0.9, 0.9, 0.9, None, None, {})
        for m in range(12)
    ]
    latest = explained(7, slices)
    alerts = [
        explained(3, 4, broad=True),
        latest,
        explained(9, 0, explanation=None),  # later, not explained
        explained(10, 0, explanation=None, kind="data", signal="feature:amount"),
    ]
    figure = report_figure([ModelSeries("fraud", points, alerts)], title="t")
    (panel,) = explanation_panels(figure)
    assert latest.explanation is not None
    top = latest.explanation.slices[: min(slices, MAX_SLICE_BARS)]
    assert panel.get_title() == (
        "fraud: where the error changed (error_rate alert at 2026-01-01 00:07:00 UTC)"
    )
    labels = [t.get_text() for t in panel.get_yticklabels()]
    assert labels == [slice_name(s) for s in top]
    assert labels[0] == "country=at7-0"
    bottom, top_edge = panel.get_ylim()
    assert bottom > top_edge, "the first slice is not on top"
    assert [bar.get_width() for bar in bars(panel)] == [s.contribution for s in top]
    assert panel.get_xlabel() == CONTRIBUTION_LABEL
    assert [t.get_text().split()[0] for t in panel.texts] == [f"{s.contribution:+.3f}" for s in top]
    assert len(time_panels(figure)) == 2  # the rates and feature:amount


def test_a_bar_says_what_the_alerts_line_says_of_its_slice() -> None:
    """Right of each bar: its contribution, then the slice's error before and after (``-``
    for a side without outcomes) and its share of the traffic, worded as the alerts line."""
    points = [
        HistoryPoint(T0 + timedelta(minutes=m), m, m, 0.9, 0.9, 0.9, None, None, {})
        for m in range(12)
    ]
    alert = DriftAlert.model_validate(ALERT | {"explanation": EXPLANATION})
    (panel,) = explanation_panels(report_figure([ModelSeries("fraud", points, [alert])], title="t"))
    assert [t.get_text() for t in panel.texts] == [
        "+0.090  (error 0.08→0.71 on 14% of traffic)",
        "+0.090  (error 0.08→0.71 on 14% of traffic)",
        "+0.090  (error -→0.71 on 14% of traffic)",
    ]
    assert alert.explanation is not None
    assert format_explanation(alert.explanation) == (
        "where: country=NL error 0.08→0.71 on 14% of traffic (+0.090);"
        " 500<=amount error 0.08→0.71 on 14% of traffic (+0.090) | data alerts: category:country"
    )


def test_a_broad_change_says_so_and_a_model_without_explanation_gets_no_bars(
    series: list[ModelSeries],
) -> None:
    stable, fraud, churn = series
    assert not any(a.explanation for a in [*stable.alerts, *churn.alerts])
    assert any(a.explanation for a in fraud.alerts)
    alone = report_figure([stable, churn], title="t")
    assert explanation_panels(alone) == []
    assert len(alone.get_axes()) == 2 + len(alerted_signals(churn.alerts))
    mixed = report_figure(series, title="t")
    (panel,) = explanation_panels(mixed)
    latest = max((a for a in fraud.alerts if a.explanation), key=lambda a: a.detected_at)
    assert latest.explanation is not None
    assert latest.explanation.broad
    assert panel.get_title().endswith("\nbroad change: no slice carries most of it")
    assert len(bars(panel)) == MAX_SLICE_BARS < len(latest.explanation.slices)
    # the bars' labels leave the margins of the other models' panels as they were
    for figure in (alone, mixed):
        figure.draw_without_rendering()
    others = [a for a in time_panels(mixed) if not a.get_title().startswith("fraud")]
    for before, after in zip(alone.get_axes(), others, strict=True):
        assert after.get_position().x0 == pytest.approx(before.get_position().x0)
        assert after.get_position().width == pytest.approx(before.get_position().width)
