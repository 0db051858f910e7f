"""Shared fixtures: the real local Kafka and Redis, and names no other test run uses."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from hypothesis import settings as hypothesis_settings

from stream_app.local.services import services_up
from stream_app.preflight import redis_client
from stream_app.runtimes import ENGINES
from stream_app.settings import Engine, Settings, TopicSettings
from stream_app.topics import Topics, delete_topics, ensure_topics

RUN_ID = uuid.uuid4().hex[:8]

hypothesis_settings.register_profile("driftstream", deadline=None)
hypothesis_settings.load_profile("driftstream")
"""Every ``@given`` test runs without a per-example deadline: the default 200 ms failed
examples on a loaded machine (``DeadlineExceeded``, then ``FlakyFailure`` when the replay was
faster). Other limits (``max_examples``) stay hypothesis' defaults unless a test sets them."""


def scoped_settings(base: Settings, name: str, partitions: int = 4) -> Settings:
    """``base`` with topics named ``<name>.*`` and Redis keys under ``<name>:driftstream:``."""
    return base.model_copy(
        update={
            "topics": TopicSettings(prefix=f"{name}.", partitions=partitions),
            "redis": base.redis.model_copy(update={"key_prefix": f"{name}:driftstream:"}),
        }
    )


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each runtime in turn: a test that takes it is the runtime conformance suite, which every
    runtime in ``stream_app.runtimes.ENGINES`` must pass."""
    engine: Engine = request.param
    return engine


@pytest.fixture(scope="session")
def services() -> Settings:
    """Bring up (or reuse) the local Kafka and Redis from the environment's settings."""
    base = Settings()
    services_up(base, say=lambda message: print(f"[services] {message}"))
    return base


@pytest.fixture(scope="session")
def make_settings(services: Settings) -> Iterator[Callable[..., Settings]]:
    """A factory of settings whose topic and Redis prefixes are unique to this call.

    Every topic of this test run is deleted when the session ends.
    """
    made = 0

    def make(partitions: int = 4) -> Settings:
        nonlocal made
        made += 1
        return scoped_settings(services, f"t{RUN_ID}-{made}", partitions)

    yield make
    delete_topics(services.kafka, f"t{RUN_ID}-")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings for one test: its own topic prefix and Redis key prefix."""
    return make_settings()


@pytest.fixture
def topics(settings: Settings) -> Topics:
    """The public topics of this test's prefix, created on the real broker."""
    return ensure_topics(settings.kafka, settings.topics)


@pytest.fixture
def redis_conn(settings: Settings) -> Iterator[redis.Redis]:
    """A client of the real Redis; the test's keys are deleted afterwards."""
    client = redis_client(settings.redis)
    yield client
    keys = list(client.scan_iter(match=f"{settings.redis.key_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
