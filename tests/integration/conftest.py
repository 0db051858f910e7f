"""Everything under tests/integration talks to the real local Kafka and Redis."""

from __future__ import annotations

import pytest

from tests.mlflow_server import mlflow_server  # noqa: F401 (the fixture, for test_notify_mlflow)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
