"""PNG reports: a model's accuracy, precision and recall over time, its alerts, its signals.

One function draws every report, whatever the source of the points: the Redis history a live
worker writes (``driftstream report``), a replay (``driftstream replay FILE --report``), or the
demo. Per model, the top panel shows the rolling accuracy, precision and recall (or the mean
absolute error of a regression model) with a threshold line; below it, one panel per data
signal that alerted (at most ``MAX_SIGNAL_PANELS``) shows that signal's rolling mean. The top
panel also shows, dashed, the accuracy estimated from the scores of the recent predictions
(the ``estimated_accuracy`` signal), which needs no labels. Every
panel has a vertical line at each alert (when it was detected, in event time) and, when the
true drift start is known (simulated traffic), a dotted line there. Below the group, a model
whose alerts carry an explanation (concept alerts, and the label-free ``estimated_accuracy``,
whose error is the one estimated from the scores) gets the contributions of the top slices of
its latest explained one (at most ``MAX_SLICE_BARS``) as horizontal bars, named as the alerts
line names them; its title says the alert's signal and time, and whether the change is broad.
The bars come in the explanation's order: by contribution beyond the slice's share of traffic.

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
from schemas.events import DriftAlert, Explanation, SliceContribution
from stream_app.alerts_feed import slice_change, slice_name
from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.reader import read_history, read_model_alerts

MAX_SIGNAL_PANELS = 3
"""Data signals drawn per model (the first ones to alert)."""
MAX_SLICE_BARS = 5
"""Slices of the latest explained concept alert drawn per model (its top ones)."""
CONTRIBUTION_LABEL = "contribution to the error's change"
"""The x axis of a model's explanation bars."""
MAX_BAR_LABEL = 40
"""The longest name of a slice beside its bar (a longer one is cut)."""
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
    explained = {model.model_id: explained_alert(model.alerts) for model in models}
    heights = [
        r
        for m in models
        for r in (
            3.0,
            *([1.6] * len(signals[m.model_id])),
            *_bars_height(explained[m.model_id]),
        )
    ]
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
        alert = explained[model.model_id]
        if alert is not None and alert.explanation is not None:
            # a grid of its own: its slices' labels leave the other panels' margins as they are
            # (the empty column: about the legends' width, so the panels end at the same x)
            cell = grid[row].subgridspec(1, 2, width_ratios=(0.76, 0.24))[0]
            _draw_explanation(figure.add_subplot(cell), model.model_id, alert, alert.explanation)
            row += 1
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


def explained_alert(alerts: Sequence[DriftAlert]) -> DriftAlert | None:
    """The latest alert (by detection time) with an explanation (a concept alert, or the
    label-free ``estimated_accuracy``), if any."""
    explained = [a for a in alerts if a.explanation is not None]
    return sorted(explained, key=lambda a: a.detected_at)[-1] if explained else None


def _bars_height(alert: DriftAlert | None) -> tuple[float, ...]:
    """The height ratio of a model's explanation panel: none without one."""
    if alert is None or alert.explanation is None:
        return ()
    return (1.4 + 0.35 * len(alert.explanation.slices[:MAX_SLICE_BARS]),)


def _draw_explanation(
    axes: Axes, model_id: str, alert: DriftAlert, explanation: Explanation
) -> None:
    """The top slices' contributions as bars, the top one on top, each with its contribution
    and its error before and after written right of it (of zero for a negative bar)."""
    parts = explanation.slices[:MAX_SLICE_BARS]
    title = (
        f"{model_id}: where the error changed "
        f"({alert.signal} alert at {alert.detected_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    if explanation.broad:
        title += "\nbroad change: no slice carries most of it"
    axes.set_title(title, fontsize=11)
    if not parts:
        axes.set_xticks([])
        axes.set_yticks([])
        axes.text(
            0.5, 0.5, "no slice stands out", ha="center", va="center", transform=axes.transAxes
        )
        return
    values = [part.contribution for part in parts]
    positions = list(range(len(parts)))
    axes.barh(positions, values, height=0.6, color=_ALERT_STYLE["concept"]["color"])
    axes.set_yticks(positions, [_cut(slice_name(part)) for part in parts])
    axes.set_ylim(len(parts) - 0.5, -0.5)  # the top slice on top
    axes.set_ylabel(f"top slices\n(of {len(explanation.slices)})", fontsize=9)
    for position, part in zip(positions, parts, strict=True):
        axes.annotate(
            _bar_text(part),
            (max(part.contribution, 0.0), position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    # the texts take about the right 40% of the axes
    axes.set_xlim(low - 0.03 * span, high + 0.75 * span)
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.grid(axis="x", alpha=0.3)
    axes.set_xlabel(CONTRIBUTION_LABEL)


def _cut(label: str) -> str:
    """A bar's label at most ``MAX_BAR_LABEL`` characters long."""
    return label if len(label) <= MAX_BAR_LABEL else f"{label[: MAX_BAR_LABEL - 1]}…"


def _bar_text(part: SliceContribution) -> str:
    """The text right of a slice's bar: ``+0.063  (error 0.12→0.71 on 11% of traffic)``."""
    return f"{part.contribution:+.3f}  ({slice_change(part)})"


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
