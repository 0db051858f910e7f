"""``driftstream demo``: everything, end to end, on local services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from stream_app.cli.console import console, fail


def demo(
    duration: Annotated[float, typer.Option(min=5, help="Seconds of simulated traffic.")] = 40.0,
    rate: Annotated[float, typer.Option(min=10, help="Events sent per second.")] = 600.0,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    report: Annotated[
        Path, typer.Option(help="The report image (PNG) to write at the end.")
    ] = Path("driftstream-demo-report.png"),
) -> None:
    """Run Kafka, Redis, the worker and four simulated models; show alerts and a summary.

    Exits non-zero if the detectors did not do their job: an alert on the stable model, or
    none on a drifting one. Ctrl-C stops the worker and the services the demo started.
    """
    from stream_app.local.demo import run_demo

    try:
        scores = run_demo(console, duration=duration, rate=rate, seed=seed, report=report)
    except KeyboardInterrupt:
        fail("interrupted; the worker and the services the demo started were stopped", code=130)
    except RuntimeError as exc:  # a service or the worker failed; the message says which
        fail(escape(str(exc)))
    wrong = [s.model_id for s in scores if (s.scenario == "stable") == bool(s.alerts)]
    if wrong:
        fail(f"unexpected alerts (or missing ones) for: {', '.join(wrong)}")
    console.print("[bold green]as expected:[/bold green] drifting models alerted, stable one quiet")
