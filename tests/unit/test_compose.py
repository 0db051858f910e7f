"""docker-compose.yml cannot run here (no Docker engine): check its shape and its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from stream_app.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    result: dict[str, Any] = document["services"]
    return result


def _settings_field_exists(env_name: str) -> bool:
    """Whether DRIFTSTREAM_SECTION__FIELD names a field of the Settings tree."""
    model: type[BaseModel] = Settings
    parts = env_name.removeprefix("DRIFTSTREAM_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if depth < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_services_ports_and_healthchecks(services: dict[str, Any]) -> None:
    assert {"kafka", "redis", "worker", "simulator"} <= set(services)
    assert "9092:9092" in services["kafka"]["ports"]
    assert "6379:6379" in services["redis"]["ports"]
    for name in ("kafka", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("worker", "simulator"):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_is_kraft_with_an_official_image(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_every_driftstream_variable_is_a_setting(services: dict[str, Any]) -> None:
    names = {
        name
        for service in services.values()
        for name in service.get("environment", {})
        if name.startswith("DRIFTSTREAM_")
    }
    assert names, "the app services should be configured through DRIFTSTREAM_* variables"
    unknown = sorted(name for name in names if not _settings_field_exists(name))
    assert unknown == []


def test_the_check_itself_rejects_unknown_names() -> None:
    assert _settings_field_exists("DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS")
    assert not _settings_field_exists("DRIFTSTREAM_KAFKA__BOOTSTRAP")
    assert not _settings_field_exists("DRIFTSTREAM_NOPE__X")
