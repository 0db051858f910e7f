"""``driftstream schemas export DIR``: the event contracts as JSON Schema files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.export import export_json_schemas
from stream_app.cli.console import console, fail

schemas_app = typer.Typer(help="The event contracts (JSON Schema).", no_args_is_help=True)


@schemas_app.command()
def export(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Folder to write into; created if missing.")
    ],
) -> None:
    """Write one JSON Schema file per event (prediction, label, drift alert) into DIR."""
    try:
        written = export_json_schemas(directory)
    except OSError as exc:
        fail(f"cannot write schemas to {directory}: {exc}")
    for path in written:
        console.print(str(path), soft_wrap=True, markup=False)
