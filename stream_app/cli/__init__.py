"""The ``driftstream`` command line (typer): one module per group of commands."""

from __future__ import annotations

import typer

from stream_app.cli.calibrate import calibrate
from stream_app.cli.demo import demo
from stream_app.cli.live import alerts, state, worker
from stream_app.cli.notify import notify
from stream_app.cli.replay import replay
from stream_app.cli.report import report
from stream_app.cli.schemas import schemas_app
from stream_app.cli.services import services_app
from stream_app.cli.simulate import simulate
from stream_app.cli.topics import topics_app

app = typer.Typer(
    name="driftstream",
    help="Real-time drift detection for ML models in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(services_app, name="services")
app.add_typer(schemas_app, name="schemas")
app.add_typer(topics_app, name="topics")
app.command()(simulate)
app.command()(worker)
app.command()(alerts)
app.command()(notify)
app.command()(state)
app.command()(replay)
app.command()(calibrate)
app.command()(report)
app.command()(demo)
