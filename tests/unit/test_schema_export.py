"""The exported JSON Schemas agree with the models on the shared examples and on any valid event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from hypothesis import given
from jsonschema import Draft202012Validator
from typer.testing import CliRunner, Result

from schemas.codec import encode
from schemas.events import Event
from schemas.export import EVENT_MODELS, export_json_schemas
from stream_app.cli.schemas import schemas_app
from tests import strategies
from tests.event_examples import EXAMPLES, Example

NAMES = ["prediction_event.schema.json", "label_event.schema.json", "drift_alert.schema.json"]


@pytest.fixture(scope="module")
def validators(tmp_path_factory: pytest.TempPathFactory) -> dict[type[Event], Draft202012Validator]:
    """A validator per model, read back from the exported files."""
    paths = export_json_schemas(tmp_path_factory.mktemp("schemas"))
    return {
        model: Draft202012Validator(json.loads(path.read_text()))
        for model, path in zip(EVENT_MODELS, paths, strict=True)
    }


def _model_accepts(example: Example) -> bool:
    try:
        example.model.model_validate_json(json.dumps(example.payload))
    except ValueError:
        return False
    return True


def test_one_valid_schema_file_per_event(tmp_path: Path) -> None:
    paths = export_json_schemas(tmp_path / "new")
    assert [p.name for p in paths] == NAMES
    for path in paths:
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False
        assert schema["properties"]["schema_version"]["const"] == 1


@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if e.schema_can_tell], ids=lambda e: e.name
)
def test_schema_agrees_with_model(
    example: Example, validators: dict[type[Event], Draft202012Validator]
) -> None:
    expected = example.field is None
    assert _model_accepts(example) is expected
    assert validators[example.model].is_valid(example.payload) is expected


@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if not e.schema_can_tell], ids=lambda e: e.name
)
def test_rules_only_the_model_enforces(
    example: Example, validators: dict[type[Event], Draft202012Validator]
) -> None:
    """The gaps documented in ``schemas/export.py``: the schema lets these through."""
    assert not _model_accepts(example)
    assert validators[example.model].is_valid(example.payload)


@given(event=strategies.events())
def test_schema_accepts_every_valid_event(
    event: Event, validators: dict[type[Event], Draft202012Validator]
) -> None:
    validators[type(event)].validate(json.loads(encode(event)))


def _cli(*args: str) -> Result:
    """Run ``driftstream schemas ...`` as the main app will mount it."""
    app = typer.Typer()
    app.add_typer(schemas_app, name="schemas")
    return CliRunner().invoke(app, ["schemas", *args])


def test_cli_export_prints_the_files(tmp_path: Path) -> None:
    result = _cli("export", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(tmp_path / name) for name in NAMES]


def test_cli_export_fails_cleanly_on_an_unusable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _cli("export", str(blocker / "sub"))
    assert result.exit_code == 1
    assert "error: cannot write schemas to" in result.stderr
