"""``driftstream replay FILE``: the worker's detection core over a recorded stream, offline.

Examples::

    driftstream simulate -m fraud=abrupt -m churn=data-drift --events 20000 --to-file ev.jsonl
    driftstream replay ev.jsonl
    driftstream replay ev.jsonl --concept-detectors adwin,ddm --data-detectors "" --json
    driftstream replay ev.jsonl --report replay.png
    driftstream replay ev.jsonl --detectors detectors.json

The file is JSON lines as ``driftstream simulate --to-file`` writes them
(:mod:`producers.event_file`). No Kafka or Redis: the events go through
:class:`pipeline.backtest.Backtest` in file order, with the join TTL and cap and the detector
defaults of the settings (``DRIFTSTREAM_JOIN__TTL_SECONDS``, ``DRIFTSTREAM_DETECTORS__...``);
``--detectors FILE`` uses a detector file (``driftstream calibrate --out``) instead of the one
``DRIFTSTREAM_DETECTORS__FILE`` names.
Each alert is printed as it is raised, then a summary per model. A bad line is reported with
its ``file:line`` and skipped (counted in the summary), as the worker dead-letters bad input
and goes on. ``--json`` prints one JSON document (alerts and per-model summary) instead.
``--report PNG`` also draws the models' accuracy, precision, recall and alerted signals over
event time, a point every ``--report-every`` observations of a model
(:mod:`stream_app.report_chart`: the picture ``driftstream report`` draws from a live worker's Redis
history).
Exit codes: 0 done, 2 the file cannot be read or an option is invalid.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detectors.config import DetectorConfig, DetectorFileError
from pipeline.backtest import Backtest, BacktestSummary, ModelReport
from producers.event_file import scan_event_lines
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.alerts_feed import format_alert
from stream_app.cli.console import SkippedLines, console, errors, fail, load_settings
from stream_app.gc_tuning import collect_less_often
from stream_app.processors import replay_of
from stream_app.settings import Settings

PROGRESS_MIN_BYTES = 4 * 1024 * 1024
"""Files at least this large show a progress bar (on stderr)."""
SUMMARY_ROWS = (
    "predictions",
    "labels",
    "joined",
    "duplicates",
    "expired predictions",
    "orphan labels",
    "pending",
    "late observations",
    "accuracy (recent)",
    "accuracy (estimated)",
    "status",
    "alerts",
)


def replay(
    file: Annotated[Path, typer.Argument(help="JSON lines, as `simulate --to-file` writes.")],
    concept_detectors: Annotated[
        str | None,
        typer.Option(help="Comma-separated detectors for concept signals (default: settings)."),
    ] = None,
    data_detectors: Annotated[
        str | None,
        typer.Option(help='Comma-separated detectors for data signals ("": none).'),
    ] = None,
    cooldown: Annotated[
        int | None, typer.Option(min=0, help="Signal values between alerts of one detector.")
    ] = None,
    detectors: Annotated[
        Path | None,
        typer.Option(help="A detector file (`calibrate --out`), instead of the settings' one."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of text.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Also draw the models over time into this PNG file.")
    ] = None,
    report_every: Annotated[
        int, typer.Option(min=1, help="Observations of a model between report points.")
    ] = 100,
) -> None:
    """Replay a recorded stream through the detectors, offline; print alerts and a summary."""
    collect_less_often()
    settings = load_settings()
    backtest = replay_of(
        settings,
        _detector_config(settings, concept_detectors, data_detectors, cooldown, detectors),
        history_every=report_every if report else 0,
    )
    started = time.monotonic()
    skipped = _run(backtest, file, show_alerts=not json_output)
    elapsed = time.monotonic() - started
    summary = backtest.summary()
    if json_output:
        typer.echo(json.dumps(_document(file, summary, skipped), indent=2, default=_iso_time))
    else:
        _show_summary(file, summary, skipped, elapsed)
    if report is not None:
        _write_report(backtest, file, report)
        (errors if json_output else console).print(f"report: {escape(str(report))}")


def _write_report(backtest: Backtest, file: Path, out: Path) -> None:
    """Draw every model with a detector bank (a model with labels only has none)."""
    from stream_app.report_chart import ModelSeries, write_report

    series = [
        ModelSeries(
            model_id,
            backtest.history.get(model_id, []),
            [alert for alert in backtest.alerts if alert.model_id == model_id],
        )
        for model_id in sorted(backtest.banks)
    ]
    write_report(series, out, title=f"driftstream replay of {file.name}")


def _detector_config(
    settings: Settings,
    concept: str | None,
    data: str | None,
    cooldown: int | None,
    file: Path | None,
) -> DetectorConfig:
    """The settings' detector defaults with the command line's overrides."""
    detector_settings = settings.detectors
    if file is not None:
        detector_settings = detector_settings.model_copy(update={"file": file})
    overrides: dict[str, Any] = {}
    if concept is not None:
        overrides["concept_detectors"] = _names(concept)
    if data is not None:
        overrides["data_detectors"] = _names(data)
    if cooldown is not None:
        overrides["alert_cooldown_events"] = cooldown
    try:
        return DetectorConfig.from_settings(detector_settings, **overrides)
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from exc
    except DetectorFileError as exc:
        fail(escape(f"--detectors: {exc}"), code=2)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


BATCH_EVENTS = 10_000
"""Events read before the replay runs them through the processors (the worker's batches are
what one consumer poll returns)."""


def _run(backtest: Backtest, file: Path, *, show_alerts: bool) -> SkippedLines:
    """Feed the file's events to ``backtest``, skipping (and reporting) the bad lines."""
    skipped = SkippedLines()
    try:
        size = file.stat().st_size
        progress = Progress(
            TextColumn("replaying"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
            disable=size < PROGRESS_MIN_BYTES or not errors.is_terminal,
        )
        with progress, progress.open(file, "rb") as lines:
            batch: list[PredictionEvent | LabelEvent] = []
            for item in scan_event_lines(lines, str(file)):
                if isinstance(item, InvalidEvent):
                    skipped.add(item.reason)
                    continue
                batch.append(item)
                if len(batch) == BATCH_EVENTS:
                    _show_alerts(backtest.process_many(batch), show_alerts)
                    batch.clear()
            _show_alerts(backtest.process_many(batch), show_alerts)
    except OSError as exc:
        fail(f"cannot read {escape(str(file))}: {escape(exc.strerror or repr(exc))}", code=2)
    _show_alerts(backtest.finish(), show_alerts)  # what was held to keep event-time order
    return skipped


def _show_alerts(alerts: list[DriftAlert], show: bool) -> None:
    for alert in alerts if show else ():
        console.print(format_alert(alert), soft_wrap=True, markup=False)


def _cells(model: ModelReport) -> list[str]:
    """A model's column of the summary table, in the order of ``SUMMARY_ROWS``."""
    c, bank = model.counts, model.bank
    counts = (
        c.predictions,
        c.labels,
        c.joined,
        c.duplicates,
        c.expired_predictions,
        c.orphan_labels,
        c.pending_predictions + c.pending_labels,
        c.late_observations,
    )
    if bank is not None and bank.accuracy is not None:
        quality = f"{bank.accuracy:.1%}"
    elif bank is not None and bank.mean_absolute_error is not None:
        quality = f"MAE {bank.mean_absolute_error:.4g}"
    else:
        quality = "-"
    estimated = None if bank is None else bank.estimated_accuracy
    status = "-" if bank is None else bank.status
    return [
        *(f"{n:,}" for n in counts),
        quality,
        "-" if estimated is None else f"{estimated:.1%}",
        status,
        str(c.alerts),
    ]


def _show_summary(
    file: Path, summary: BacktestSummary, skipped: SkippedLines, elapsed: float
) -> None:
    """A column per model: narrow enough for a terminal while there are a few models."""
    columns = {model_id: _cells(model) for model_id, model in summary.models.items()}
    table = Table("", title="replay summary", box=box.SIMPLE_HEAD)
    for model_id in columns:
        table.add_column(escape(model_id), justify="right")
    for row in zip(SUMMARY_ROWS, *columns.values(), strict=True):
        table.add_row(*row)
    if columns:
        console.print(table)
    rate = summary.events / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{summary.events:,} events from {escape(str(file))} in {elapsed:.1f}s "
        f"({rate:,.0f} events/s): {len(summary.alerts)} alerts, {skipped.count} invalid lines "
        f"skipped, {summary.evicted} entries evicted from the join",
        soft_wrap=True,
    )


def _iso_time(value: datetime) -> str:
    """JSON for the summaries' datetimes (the only non-JSON values in them)."""
    return value.isoformat()


def _document(file: Path, summary: BacktestSummary, skipped: SkippedLines) -> dict[str, Any]:
    """The ``--json`` output: alerts in order, the per-model counts and bank summaries."""
    models = {
        model_id: {
            **asdict(model.counts),
            "bank": None if model.bank is None else asdict(model.bank),
        }
        for model_id, model in summary.models.items()
    }
    return {
        "file": str(file),
        "events": summary.events,
        "invalid_lines": skipped.count,
        "invalid": skipped.reasons,
        "evicted": summary.evicted,
        "alerts": [alert.model_dump(mode="json") for alert in summary.alerts],
        "models": models,
    }
