"""A development Redis from Debian's ``redis-server``, on loopback, without persistence.

Its configuration is a file readable only by us (``redis.conf`` in the state folder), so a
password never shows on a command line. With a username and password in the settings the
server has that ACL user, allowed the commands that are not "dangerous" (no FLUSHALL, KEYS,
CONFIG, ...) on keys under the configured key prefix only,
and the default user is off; with a password alone the default user requires it.
"""

from __future__ import annotations

import shutil
from urllib.parse import urlparse

from stream_app.local.services.base import LocalService, Say
from stream_app.local.services.process import ManagedProcess, ServiceError, write_private_file
from stream_app.preflight import check_redis
from stream_app.settings import LocalServicesSettings, RedisSettings


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

    def check(self) -> None:
        check_redis(self.settings, timeout=1.0)

    def launch(self, say: Say) -> int:
        binary = _redis_server_binary()
        self.home.mkdir(parents=True, exist_ok=True)
        config = write_private_file(self.home / "redis.conf", self._config())
        say(f"starting redis-server on {self.address}")
        return self.process.start([binary, str(config)])

    def _config(self) -> str:
        lines = [
            ["bind", self.host],
            ["port", str(self.port)],
            ["dir", str(self.home)],
            ["save", ""],
            ["appendonly", "no"],
            ["daemonize", "no"],
        ]
        password = self.settings.password
        if password is not None and self.settings.username is not None:
            keys = "~" + _glob_escaped(self.settings.key_prefix) + "*"
            secret = ">" + password.get_secret_value()
            lines += [
                ["user", "default", "off", "resetpass", "nocommands"],
                ["user", self.settings.username, "on", secret, keys, "+@all", "-@dangerous"],
            ]
        elif password is not None:
            lines.append(["requirepass", password.get_secret_value()])
        return "".join(" ".join(_quoted(word) for word in line) + "\n" for line in lines)


def _quoted(word: str) -> str:
    """A redis.conf argument in double quotes (its parser's escapes: ``\\\\``, ``\\"``,
    ``\\xHH``)."""
    body = "".join(
        c if " " <= c < "\x7f" and c not in '\\"' else "".join(f"\\x{b:02x}" for b in c.encode())
        for c in word
    )
    return f'"{body}"'


def _glob_escaped(text: str) -> str:
    """``text`` matched literally in a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
