"""Check, before any real work, that Kafka and Redis accept the configured credentials.

Kafka clients (librdkafka, aiokafka) retry a refused login quietly and for as long as they run,
so a wrong password would look like a hang. :func:`check_kafka` makes one metadata request with
the configured settings and tells an authentication failure (fails at once) from a service that
does not answer (fails at the timeout); :func:`check_redis` does the same with PING and a read
under the key prefix (which also proves an ACL user may use our keys). Either raises
:class:`PreflightError`, whose message is one line naming the service, its address, the user and
what failed, and never a secret.

It also makes the Redis client every command uses (:func:`redis_client`), so the local services
(``stream_app.local.services``), which check what they start with these functions, sit above it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Literal
from urllib.parse import urlparse

import redis
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from stream_app.settings import KafkaSettings, RedisSettings

Problem = Literal["authentication", "unreachable"]

KAFKA_TIMEOUT_SECONDS = 10.0
REDIS_TIMEOUT_SECONDS = 5.0

_KAFKA_AUTH_CODES = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}


class PreflightError(RuntimeError):
    """A service cannot be used with the configured settings; ``str()`` is one line."""

    def __init__(self, service: str, address: str, problem: Problem, detail: str) -> None:
        self.service = service
        self.address = address
        self.problem = problem
        what = "refused the credentials" if problem == "authentication" else "did not answer"
        super().__init__(" ".join(f"{service} at {address} {what}: {detail}".split()))


def check_kafka(kafka: KafkaSettings, timeout: float = KAFKA_TIMEOUT_SECONDS) -> None:
    """One metadata request; raise :class:`PreflightError` unless a broker answers."""
    errors: deque[KafkaError] = deque(maxlen=50)
    quiet: dict[str, Any] = {"log_level": 0, "error_cb": errors.append}
    admin = AdminClient({**kafka.client_config(), **quiet})
    deadline = time.monotonic() + timeout
    while True:
        try:
            if admin.list_topics(timeout=min(1.0, timeout)).brokers:
                return
        except KafkaException:
            pass  # the broker-level cause arrives through error_cb
        admin.poll(0)
        refused = [e for e in errors if e.code() in _KAFKA_AUTH_CODES]
        if refused:
            detail = _login(kafka) + refused[-1].str()
            raise PreflightError("Kafka", kafka.bootstrap_servers, "authentication", detail)
        if time.monotonic() >= deadline:
            causes = [e.str() for e in errors if e.code() == KafkaError._TRANSPORT]
            cause = causes[-1] if causes else "the connection was closed without an answer"
            raise PreflightError(
                "Kafka",
                kafka.bootstrap_servers,
                "unreachable",
                f"no metadata within {timeout:.0f}s with security.protocol="
                f"{kafka.security_protocol} (the listener's?): {cause}",
            )


def redis_client(settings: RedisSettings, **overrides: object) -> redis.Redis:
    """A client for the configured Redis (credentials and TLS from the settings)."""
    return redis.Redis.from_url(settings.url, **{**settings.client_kwargs(), **overrides})


def check_redis(settings: RedisSettings, timeout: float = REDIS_TIMEOUT_SECONDS) -> None:
    """PING and a read under the key prefix; raise :class:`PreflightError` if either fails."""
    address = redis_address(settings)
    user = f"user {settings.username!r}" if settings.username else "the default user"
    try:
        with redis_client(
            settings, socket_timeout=timeout, socket_connect_timeout=timeout
        ) as client:
            client.ping()
            client.exists(f"{settings.key_prefix}models")
    except (redis.AuthenticationError, redis.ResponseError) as exc:  # also NOPERM, NOAUTH
        hint = "" if settings.password else " (no DRIFTSTREAM_REDIS__PASSWORD is set)"
        raise PreflightError("Redis", address, "authentication", f"{user}{hint}: {exc}") from None
    except redis.RedisError as exc:
        raise PreflightError("Redis", address, "unreachable", str(exc)) from None


def redis_address(settings: RedisSettings) -> str:
    """``host:port/db`` of the Redis URL, without any user information, for messages."""
    url = urlparse(settings.url)
    return f"{url.hostname or '127.0.0.1'}:{url.port or 6379}{url.path}"


def _login(kafka: KafkaSettings) -> str:
    if kafka.sasl_username is None:
        return f"({kafka.security_protocol}) "
    return f"user {kafka.sasl_username!r} ({kafka.sasl_mechanism or 'PLAIN'}): "
