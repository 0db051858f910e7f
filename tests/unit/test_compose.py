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


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        mounts[container] = (COMPOSE.parent / host).resolve()
    return mounts


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    assert {"prometheus", "grafana"} <= set(services)
    missing = [name for name, service in services.items() if not service.get("healthcheck")]
    assert missing == []
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_mounted_files_exist(services: dict[str, Any]) -> None:
    mounts = [path for service in services.values() for path in _mounts(service).values()]
    assert mounts
    assert [path for path in mounts if not path.exists()] == []


def test_prometheus_scrapes_the_worker_port(services: dict[str, Any]) -> None:
    worker = services["worker"]
    port = worker["environment"]["DRIFTSTREAM_WORKER__METRICS_PORT"]
    assert worker["environment"]["DRIFTSTREAM_WORKER__METRICS_HOST"] == "0.0.0.0"
    assert f"{port}:{port}" in worker["ports"]
    assert f"localhost:{port}/metrics" in " ".join(worker["healthcheck"]["test"])

    prometheus = services["prometheus"]
    config_file = next(
        arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file=")
    )
    host_config = _mounts(prometheus)[str(Path(config_file).parent)] / Path(config_file).name
    config = yaml.safe_load(host_config.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = jobs["driftstream-worker"]["static_configs"][0]["targets"]
    assert targets == [f"worker:{port}"]


def test_grafana_reads_the_provisioned_prometheus_and_dashboards(services: dict[str, Any]) -> None:
    grafana = _mounts(services["grafana"])
    provisioning = grafana["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    prometheus_port = services["prometheus"]["ports"][0].split(":")[-1]
    assert datasource["datasources"][0]["url"] == f"http://prometheus:{prometheus_port}"
    providers = yaml.safe_load((provisioning / "dashboards" / "driftstream.yml").read_text())
    dashboards_path = providers["providers"][0]["options"]["path"]
    assert list(grafana[dashboards_path].glob("*.json"))
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (grafana[dashboards_path] / Path(home).name).exists()
    assert Path(home).parent == Path(dashboards_path)
