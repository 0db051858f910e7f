"""``driftstream calibrate REFERENCE``: detector settings for a false-alarm budget.

Examples::

    driftstream simulate -m fraud=stable --events 20000 --seed 1 --to-file reference.jsonl
    driftstream calibrate reference.jsonl --out detectors.json --false-alarms-per-million 1
    driftstream replay live.jsonl --detectors detectors.json
    DRIFTSTREAM_DETECTORS__FILE=detectors.json driftstream worker

The reference is a recording of normal traffic (``simulate --to-file`` format). It goes
through the join and each model's bank as in the replay, without detectors, which gives every
signal's values. For each signal with at least ``MIN_REFERENCE_VALUES`` values and detectors
configured (the settings' detectors), each detector's knob is set so that the signal's
expected false alarms stay within the budget, shared equally among its detectors
(:mod:`detectors.budget`, on the reference resampled); then the delay to detect a standard
shift (``--shift-sd`` standard deviations of the signal, up) is measured. One row per signal
is printed, and the detector file (:class:`detectors.config.DetectorFile`) written to
``--out``. Exit codes: 0 done, 2 the reference cannot be read, an option is invalid or no
signal has enough values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from detectors import budget
from detectors.bank import DetectorBank
from detectors.config import CalibratedSignal, DetectorConfig, DetectorFile
from detectors.registry import DetectorSpec
from detectors.signals import Signal
from pipeline.effects import Effects
from producers.event_file import scan_event_lines
from schemas.errors import InvalidEvent
from schemas.events import LabelEvent, PredictionEvent
from stream_app.cli.console import SkippedLines, console, errors, fail, load_settings
from stream_app.gc_tuning import collect_less_often
from stream_app.processors import detector_config, join_processor
from stream_app.settings import Settings

MIN_REFERENCE_VALUES = 500
"""Signals with fewer reference values keep their detectors."""
DELAY_RUNS = 20
"""Shifted streams per signal whose detection delays are measured."""

SignalValues = dict[str, dict[str, tuple[Signal, list[float]]]]
"""Model id -> signal name -> (signal, its values in stream order)."""


def calibrate(
    reference: Annotated[
        Path, typer.Argument(help="A recording of normal traffic (`simulate --to-file`).")
    ],
    out: Annotated[Path, typer.Option(help="Write the detector file (JSON) here.")],
    false_alarms_per_million: Annotated[
        float, typer.Option(min=0.001, help="False alarms allowed per million values of a signal.")
    ] = 1.0,
    shift_sd: Annotated[
        float,
        typer.Option(min=0.01, help="The standard shift, in standard deviations of a signal."),
    ] = 0.5,
    max_values: Annotated[
        int, typer.Option(min=10_000, help="Resampled values per setting tried, at most.")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
) -> None:
    """Choose each signal's detector settings for a false-alarm budget, from a reference."""
    collect_less_often()
    settings = load_settings()
    config = detector_config(settings)
    skipped = SkippedLines()
    values = signal_values(_events(reference, skipped), settings, config)
    rows = [
        (model_id, signal, len(series))
        for model_id, signals in sorted(values.items())
        for signal, series in signals.values()
        if config.for_model(model_id).detectors_for(signal)
    ]
    usable = [row for row in rows if row[2] >= MIN_REFERENCE_VALUES]
    if not usable:
        fail(
            f"no signal with detectors has {MIN_REFERENCE_VALUES} values in "
            f"{escape(str(reference))} ({skipped.count} invalid lines skipped)",
            code=2,
        )
    models: dict[str, dict[str, CalibratedSignal]] = {}
    tables: dict[str, Table] = {}
    with Progress(console=errors, transient=True, disable=not errors.is_terminal) as progress:
        for model_id, signal, _n in progress.track(usable, description="calibrating"):
            chosen, delays = _calibrated(
                values[model_id][signal.name][1],
                signal,
                config.for_model(model_id).detectors_for(signal),
                false_alarms_per_million=false_alarms_per_million,
                shift_sd=shift_sd,
                max_values=max_values,
                seed=seed,
            )
            calibrated = CalibratedSignal(
                detectors=tuple(c.spec for c in chosen),
                false_alarms_per_million=_total(chosen),
                median_delay=budget.median_delay(delays),
            )
            models.setdefault(model_id, {})[signal.name] = calibrated
            if model_id not in tables:
                tables[model_id] = _table(model_id)
            tables[model_id].add_row(*_cells(signal, chosen, calibrated, delays))
    console.print(
        f"detectors for {false_alarms_per_million:g} false alarms per million values of a "
        f"signal (expected: on {reference.name} resampled), and the median delay (values of the "
        f"signal) to detect a shift of {shift_sd:g} standard deviations"
    )
    for table in tables.values():
        console.print(table)
    for model_id, signal, n in rows:
        if n < MIN_REFERENCE_VALUES:
            console.print(
                f"kept: {escape(model_id)} {escape(signal.name)} "
                f"({n} values, fewer than {MIN_REFERENCE_VALUES})"
            )
    document = DetectorFile(
        models=models,
        false_alarms_per_million=false_alarms_per_million,
        shift_sd=shift_sd,
        reference=str(reference),
    )
    try:
        out.write_text(document.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        fail(f"cannot write {escape(str(out))}: {escape(exc.strerror or repr(exc))}", code=2)
    console.print(f"detector file: {escape(str(out))} ({skipped.count} invalid lines skipped)")


def _calibrated(
    series: list[float],
    signal: Signal,
    specs: tuple[DetectorSpec, ...],
    *,
    false_alarms_per_million: float,
    shift_sd: float,
    max_values: int,
    seed: int,
) -> tuple[list[budget.BudgetedDetector], list[int | None]]:
    """A signal's detectors set for the budget (shared equally among them), and their delays
    to detect the standard shift."""
    chosen = [
        budget.calibrate_detector(
            spec,
            series,
            budget=false_alarms_per_million / len(specs),
            binary=signal.binary,
            max_values=max_values,
            seed=seed,
        )
        for spec in specs
    ]
    delays = budget.detection_delays(
        [c.spec for c in chosen],
        series,
        binary=signal.binary,
        shift_sd=shift_sd,
        runs=DELAY_RUNS,
        seed=seed,
    )
    return chosen, delays


def signal_values(
    events: Iterable[PredictionEvent | LabelEvent], settings: Settings, config: DetectorConfig
) -> SignalValues:
    """Every signal's values, per model, as the replay's join and banks make them (the
    detectors are not run)."""
    join = join_processor(settings, "predictions", recording=True)
    effects = Effects()
    banks: dict[str, DetectorBank] = {}
    values: SignalValues = {}
    for event in events:
        join.offer(event, 0, effects)
        for observation in effects.observations:
            model_id = observation.model_id
            bank = banks.get(model_id)
            if bank is None:
                bank = banks[model_id] = DetectorBank(model_id, config.for_model(model_id))
            model = values.setdefault(model_id, {})
            for column in bank.apply([observation]):
                if column.values and not column.signal.categorical:  # the G-test has no budget
                    model.setdefault(column.signal.name, (column.signal, []))[1].extend(
                        column.values  # type: ignore[arg-type]
                    )
        effects.clear()
    return values


def _events(file: Path, skipped: SkippedLines) -> Iterator[PredictionEvent | LabelEvent]:
    """The file's events; bad lines are reported and skipped."""
    try:
        with file.open("rb") as lines:
            for item in scan_event_lines(lines, str(file)):
                if isinstance(item, InvalidEvent):
                    skipped.add(item.reason)
                else:
                    yield item
    except OSError as exc:
        fail(f"cannot read {escape(str(file))}: {escape(exc.strerror or repr(exc))}", code=2)


def _cells(
    signal: Signal,
    chosen: list[budget.BudgetedDetector],
    calibrated: CalibratedSignal,
    delays: list[int | None],
) -> list[str]:
    """A signal's row: name, detectors, expected false alarms, median delay (and misses)."""
    expected, delay = calibrated.false_alarms_per_million, calibrated.median_delay
    missed = sum(d is None for d in delays)
    return [
        escape(signal.name),
        "\n".join(_describe(c) for c in chosen),
        "?" if expected is None else f"{expected:.3g}",
        ("-" if delay is None else f"{delay:,.0f}")
        + (f" ({missed}/{len(delays)} missed)" if missed else ""),
    ]


def _table(model_id: str) -> Table:
    """A model's rows; names wrap rather than lose their end in a narrow terminal."""
    table = Table(title=escape(model_id), title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("signal", "detectors (how set)", "false alarms/M", "delay"):
        table.add_column(header, overflow="fold")
    return table


def _total(chosen: list[budget.BudgetedDetector]) -> float | None:
    """A signal's expected false alarms per million: its detectors' together (None if one
    was not measured)."""
    rates = [c.false_alarms_per_million for c in chosen]
    return None if None in rates else sum(r for r in rates if r is not None)


def _describe(chosen: budget.BudgetedDetector) -> str:
    """``adwin delta=0.0093 (extrapolated)``: a detector, its parameters, how they were set."""
    params = ", ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in chosen.spec.params.items()
    )
    return escape(f"{chosen.spec.name} {params} ({chosen.method})".replace("  ", " "))
