"""A Kafka that requires SASL/SCRAM and a Redis that requires an ACL user, of the tests' own.

They run on free ports with their own state folder, never touching the shared services; the
passwords are unique to the run and contain characters that need escaping in every config
format they pass through (quotes, backslashes, spaces, non-ASCII).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from stream_app.local.services import local_services, services_up
from stream_app.settings import KafkaSettings, LocalServicesSettings, RedisSettings, Settings

KAFKA_USER = "driftstream-test"
REDIS_USER = "driftstream-test"
KEY_PREFIX = "secured:driftstream:"
"""The Redis ACL user may touch only keys under this prefix."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def secured_settings(state_dir: Path, kafka_password: str, redis_password: str) -> Settings:
    """Settings for SASL_PLAINTEXT/SCRAM-SHA-512 Kafka and an ACL-user Redis on free ports."""
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=KAFKA_USER,
            sasl_password=SecretStr(kafka_password),
        ),
        redis=RedisSettings(
            url=f"redis://127.0.0.1:{free_port()}/0",
            username=REDIS_USER,
            password=SecretStr(redis_password),
            key_prefix=KEY_PREFIX,
        ),
        services=LocalServicesSettings(kafka_controller_port=free_port(), state_dir=state_dir),
    )


def new_secret(kind: str) -> str:
    return f'{kind}-{uuid.uuid4().hex[:12]}-"q\\b s\u00fc'


@contextmanager
def running_secured_services(state_dir: Path) -> Iterator[Settings]:
    """Start the secured Kafka and Redis; stop them (and only them) afterwards."""
    settings = secured_settings(state_dir, new_secret("kafka"), new_secret("redis"))
    try:
        services_up(settings, say=lambda message: print(f"[secured services] {message}"))
        yield settings
    finally:
        for service in local_services(settings):
            service.down()


def passwords(settings: Settings) -> tuple[str, str]:
    """The Kafka and the Redis password."""
    kafka, redis = settings.kafka.sasl_password, settings.redis.password
    assert kafka is not None
    assert redis is not None
    return kafka.get_secret_value(), redis.get_secret_value()


def client_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess these services and credentials."""
    kafka, redis = settings.kafka, settings.redis
    kafka_password, redis_password = passwords(settings)
    return {
        "DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DRIFTSTREAM_KAFKA__SECURITY_PROTOCOL": kafka.security_protocol,
        "DRIFTSTREAM_KAFKA__SASL_MECHANISM": str(kafka.sasl_mechanism),
        "DRIFTSTREAM_KAFKA__SASL_USERNAME": str(kafka.sasl_username),
        "DRIFTSTREAM_KAFKA__SASL_PASSWORD": kafka_password,
        "DRIFTSTREAM_KAFKA__CREDENTIAL_CHECK_SECONDS": str(kafka.credential_check_seconds),
        "DRIFTSTREAM_REDIS__URL": redis.url,
        "DRIFTSTREAM_REDIS__USERNAME": str(redis.username),
        "DRIFTSTREAM_REDIS__PASSWORD": redis_password,
        "DRIFTSTREAM_REDIS__KEY_PREFIX": redis.key_prefix,
        "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix,
    }
