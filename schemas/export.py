"""JSON Schema (draft 2020-12) of the event contracts, for teams that do not run Python.

>>> schema = json_schema(LabelEvent)
>>> schema["properties"]["schema_version"]["const"], schema["additionalProperties"]
(1, False)

The schema says what JSON Schema can say: required fields, types, lengths, patterns (RFC 3339
timestamps with a timezone, key alphabets), ranges, ``schema_version`` as a constant and no
unknown fields. Only the models enforce the rest: the byte size bound (``MAX_EVENT_BYTES``),
integers written without a fraction (``3``, not ``3.0``, also for ``schema_version``), and
calendar checks on timestamps (``2026-02-30``, or a UTC time before year 1). JSON itself has
no NaN or Infinity.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from schemas.events import DriftAlert, Event, LabelEvent, PredictionEvent

EVENT_MODELS: tuple[type[Event], ...] = (PredictionEvent, LabelEvent, DriftAlert)


class _StrictKeys(GenerateJsonSchema):
    """Pydantic writes a key pattern as ``patternProperties``, which lets any other key through
    unchecked; move it to ``propertyNames`` so that such keys are rejected, as the models do."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        if "patternProperties" in json_schema:
            ((pattern, values),) = json_schema.pop("patternProperties").items()
            json_schema["additionalProperties"] = values
            json_schema.setdefault("propertyNames", {})["pattern"] = pattern
        return json_schema

    def generate(
        self, schema: core_schema.CoreSchema, mode: JsonSchemaMode = "validation"
    ) -> JsonSchemaValue:
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}


def json_schema(model: type[Event]) -> dict[str, Any]:
    """The JSON Schema that accepts what ``model`` reads."""
    return model.model_json_schema(schema_generator=_StrictKeys)


def schema_file_name(model: type[Event]) -> str:
    """``PredictionEvent`` -> ``prediction_event.schema.json``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower() + ".schema.json"


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one schema file per event model into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in EVENT_MODELS:
        path = directory / schema_file_name(model)
        path.write_text(json.dumps(json_schema(model), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
