"""A development Redis from Debian's ``redis-server``, on loopback, without persistence."""

from __future__ import annotations

import shutil
from urllib.parse import urlparse

import redis

from stream_app.services.base import LocalService, Say
from stream_app.services.process import ManagedProcess, ServiceError
from stream_app.settings import LocalServicesSettings, RedisSettings


def redis_client(settings: RedisSettings, **overrides: object) -> redis.Redis:
    """A client for the configured Redis (credentials and TLS from the settings)."""
    return redis.Redis.from_url(settings.url, **{**settings.client_kwargs(), **overrides})


def redis_answers(settings: RedisSettings, timeout: float = 1.0) -> bool:
    """True when the configured Redis answers PING (with the configured credentials)."""
    try:
        client = redis_client(settings, socket_timeout=timeout, socket_connect_timeout=timeout)
        with client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def _redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise ServiceError(
            "redis-server is not installed: run scripts/setup.sh, or apt-get install redis-server"
        )
    return found


class LocalRedis(LocalService):
    """``up``/``down``/``status`` of the development Redis described by the settings."""

    name = "redis"

    def __init__(self, settings: RedisSettings, local: LocalServicesSettings) -> None:
        self.settings = settings
        self.local = local
        url = urlparse(settings.url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 6379
        self.home = local.state_dir / "redis"
        self.process = ManagedProcess("redis", local.state_dir, marker="redis-server")

    def answers(self) -> bool:
        return redis_answers(self.settings)

    def launch(self, say: Say) -> int:
        binary = _redis_server_binary()
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.home),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        if self.settings.password is not None:
            argv += ["--requirepass", self.settings.password.get_secret_value()]
        say(f"starting redis-server on {self.address}")
        return self.process.start(argv)
