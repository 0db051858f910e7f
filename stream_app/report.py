"""PNG reports: a model's accuracy, precision and recall over time, its alerts, its signals.

One function draws every report, whatever the source of the points: the Redis history a live
worker writes (``driftstream report``), a replay (``driftstream replay FILE --report``), or the
demo. Per model, the top panel shows the rolling accuracy, precision and recall (or the mean
absolute error of a regression model) with a threshold line; below it, one panel per data
signal that alerted (at most ``MAX_SIGNAL_PANELS``) shows that signal's rolling mean. The top
panel also shows, dashed, the accuracy estimated from the scores of the recent predictions
(the ``estimated_accuracy`` signal), which needs no labels. Every
panel has a vertical line at each alert (when it was detected, in event time) and, when the
true drift start is known (simulated traffic), a dotted line there.

The threshold defaults to the model's baseline accuracy (the median of its points before its
first concept alert) minus ``THRESHOLD_MARGIN``: where a person would start to worry.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from detectors.history import HistoryPoint
from detectors.signals import CATEGORY_PREFIX, ESTIMATED_ACCURACY
from schemas.events import DriftAlert
from stream_app.live_state import LiveStateKeys, read_history, read_model_alerts

MAX_SIGNAL_PANELS = 3
"""Data signals drawn per model (the first ones to alert)."""
THRESHOLD_MARGIN = 0.05
"""The default threshold is this far below the baseline accuracy."""

_RATES = (("accuracy", "tab:blue"), ("precision", "tab:green"), ("recall", "tab:orange"))
_ALERT_STYLE = {
    "concept": {"color": "tab:red", "linestyle": "-"},
    "data": {"color": "tab:purple", "linestyle": "--"},
}


@dataclass(frozen=True)
class ModelSeries:
    """What the report draws for one model: its points, its alerts, and the truth if known."""

    model_id: str
    points: Sequence[HistoryPoint]
    alerts: Sequence[DriftAlert]
    drift_start: datetime | None = None
    description: str = ""


def live_series(client: redis.Redis, keys: LiveStateKeys, model_id: str) -> ModelSeries:
    """A model's history and alerts as the worker keeps them in Redis (``client`` must decode
    responses)."""
    return ModelSeries(
        model_id, read_history(client, keys, model_id), read_model_alerts(client, keys, model_id)
    )


def baseline_threshold(model: ModelSeries) -> float | None:
    """The median accuracy before the first concept alert (of all points without one), minus
    ``THRESHOLD_MARGIN``; None for a model without accuracy (regression)."""
    concept = [alert.detected_at for alert in model.alerts if alert.kind == "concept"]
    end = min(concept, default=None)
    accuracies = [
        p.accuracy
        for p in model.points
        if p.accuracy is not None and (end is None or p.event_time < end)
    ]
    return statistics.median(accuracies) - THRESHOLD_MARGIN if accuracies else None


def report_figure(
    models: Sequence[ModelSeries], *, title: str, threshold: float | None = None
) -> Figure:
    """The report as a matplotlib figure: a group of panels per model, stacked.

    ``threshold`` is drawn on every model's accuracy panel; by default each model gets its
    :func:`baseline_threshold`.
    """
    signals = {model.model_id: alerted_signals(model.alerts) for model in models}
    heights = [r for m in models for r in (3.0, *([1.6] * len(signals[m.model_id])))]
    figure = Figure(figsize=(12, 0.9 + 0.9 * sum(heights)), layout="constrained")
    figure.suptitle(title, fontsize=14, fontweight="bold")
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    row = 0
    for model in models:
        top = figure.add_subplot(grid[row])
        _draw_quality(top, model, threshold)
        group = [top]
        for signal in signals[model.model_id]:
            row += 1
            axes = figure.add_subplot(grid[row], sharex=top)
            _draw_signal(axes, model, signal)
            group.append(axes)
        row += 1
        for axes in group:
            _mark_alerts(axes, model)
            axes.grid(alpha=0.3)
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
            locator = AutoDateLocator()  # type: ignore[no-untyped-call]
            axes.xaxis.set_major_locator(locator)
            axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        for axes in group[:-1]:
            axes.tick_params(labelbottom=False)
        group[-1].set_xlabel("event time (UTC)")
    return figure


def write_report(
    models: Sequence[ModelSeries], out: Path, *, title: str, threshold: float | None = None
) -> Path:
    """Draw :func:`report_figure` into the PNG file ``out``; return ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    report_figure(models, title=title, threshold=threshold).savefig(out, dpi=100, format="png")
    return out


def alerted_signals(alerts: Sequence[DriftAlert]) -> list[str]:
    """The data signals that alerted, in order of their first alert, at most
    ``MAX_SIGNAL_PANELS`` (concept signals are already the top panel's rates)."""
    names = dict.fromkeys(alert.signal for alert in alerts if alert.kind == "data")
    return list(names)[:MAX_SIGNAL_PANELS]


def _draw_quality(axes: Axes, model: ModelSeries, threshold: float | None) -> None:
    points = model.points
    times = days([p.event_time for p in points])
    heading = f"{model.model_id}: {len(model.alerts)} alert{'s' * (len(model.alerts) != 1)}"
    axes.set_title(f"{heading}  ({model.description})" if model.description else heading)
    if not points:
        axes.text(0.5, 0.5, "no history points", ha="center", transform=axes.transAxes)
    if any(p.accuracy is not None for p in points) or not points:
        for name, colour in _RATES:
            values = [getattr(p, name) for p in points]
            axes.plot(times, _nan(values), color=colour, linewidth=2, label=name)
        level = threshold if threshold is not None else baseline_threshold(model)
        if level is not None:
            note = "" if threshold is not None else " (baseline - 0.05)"
            axes.axhline(
                level,
                color="black",
                linestyle=(0, (6, 3)),
                linewidth=1.2,
                label=f"threshold {level:.2f}{note}",
            )
        estimated = [p.signals.get(ESTIMATED_ACCURACY.name) for p in points]
        if any(value is not None for value in estimated):
            axes.plot(
                times,
                _nan(estimated),
                color="tab:blue",
                linestyle=(0, (3, 2)),
                linewidth=1.6,
                alpha=0.75,
                label="estimated accuracy\n(from scores, no labels)",
            )
        axes.set_ylim(0.0, 1.02)
        axes.set_ylabel("rolling rate\n(recent outcomes)")
    else:
        values = [p.mean_absolute_error for p in points]
        axes.plot(times, _nan(values), color="tab:blue", linewidth=2, label="mean absolute error")
        axes.set_ylabel("mean absolute error\n(recent outcomes)")


def _draw_signal(axes: Axes, model: ModelSeries, signal: str) -> None:
    points = [p for p in model.points if signal in p.signals]
    axes.plot(
        days([p.event_time for p in points]),
        [p.signals[signal] for p in points],
        color="tab:gray",
        linewidth=1.8,
        label="shares' distance\nfrom reference"
        if signal.startswith(CATEGORY_PREFIX)
        else "rolling mean",
    )
    axes.set_ylabel(signal.replace(":", ":\n", 1), fontsize=9)


def _mark_alerts(axes: Axes, model: ModelSeries) -> None:
    """A vertical line per alert (labelled once per kind) and at the true drift start."""
    labelled: set[str] = set()
    for alert in sorted(model.alerts, key=lambda a: a.detected_at):
        label = f"alert ({alert.kind})" if alert.kind not in labelled else None
        labelled.add(alert.kind)
        style = _ALERT_STYLE[alert.kind]
        axes.axvline(
            days([alert.detected_at])[0],
            color=style["color"],
            linestyle=style["linestyle"],
            linewidth=1.4,
            label=label,
        )
    if model.drift_start is not None:
        axes.axvline(
            days([model.drift_start])[0],
            color="black",
            linestyle=":",
            linewidth=1.6,
            label="true drift start",
        )


def days(times: Sequence[datetime]) -> list[float]:
    """Matplotlib's date numbers (days since its epoch) of ``times``."""
    return [float(day) for day in date2num(times)]  # type: ignore[no-untyped-call]


def _nan(values: Sequence[float | None]) -> list[float]:
    """None (undefined) as NaN, which matplotlib leaves as a gap."""
    return [float("nan") if v is None else v for v in values]
