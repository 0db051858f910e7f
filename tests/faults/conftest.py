"""Fault tests get a Kafka broker and a Redis of their own (other ports, other state folder),
so they can stop and restart them without disturbing the other tests' services."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stream_app.local.services import LocalKafka, LocalRedis, local_services, services_up
from stream_app.local.services.base import LocalService
from stream_app.settings import KafkaSettings, RedisSettings, Settings
from tests.conftest import RUN_ID, scoped_settings

KAFKA_PORT, CONTROLLER_PORT, REDIS_PORT = 29092, 29093, 26379


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults" in str(item.path):
            item.add_marker(pytest.mark.integration)


@dataclass
class FaultServices:
    """The fault tests' own Kafka and Redis, which a test may stop and start again."""

    settings: Settings

    def _service(self, kind: type[LocalService]) -> LocalService:
        return next(s for s in local_services(self.settings) if isinstance(s, kind))

    def stop(self, kind: type[LocalService]) -> None:
        assert self._service(kind).down(), f"{kind.name} was not running"

    def start(self, kind: type[LocalService]) -> None:
        self._service(kind).up(say=lambda message: print(f"[fault services] {message}"))

    def stop_kafka(self) -> None:
        self.stop(LocalKafka)

    def start_kafka(self) -> None:
        self.start(LocalKafka)

    def stop_redis(self) -> None:
        self.stop(LocalRedis)

    def start_redis(self) -> None:
        self.start(LocalRedis)


@pytest.fixture(scope="session")
def fault_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultServices]:
    state: Path = tmp_path_factory.mktemp("fault-services")
    base = Settings()
    settings = base.model_copy(
        update={
            "kafka": KafkaSettings(bootstrap_servers=f"127.0.0.1:{KAFKA_PORT}"),
            "redis": RedisSettings(url=f"redis://127.0.0.1:{REDIS_PORT}/0"),
            "services": base.services.model_copy(
                update={"kafka_controller_port": CONTROLLER_PORT, "state_dir": state}
            ),
        }
    )
    started = services_up(settings, say=lambda message: print(f"[fault services] {message}"))
    reused = [f"{s.name} on {s.address}" for s in started if s.state != "started"]
    assert not reused, f"fault tests need services of their own; already running: {reused}"
    try:
        yield FaultServices(settings)
    finally:
        for service in local_services(settings):
            service.down()


@pytest.fixture
def fault_settings(fault_services: FaultServices, request: pytest.FixtureRequest) -> Settings:
    """Settings for one fault test: the fault services, names of its own."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)  # test_x[kafka]: a legal topic name
    return scoped_settings(fault_services.settings, f"f{RUN_ID}-{name}")
