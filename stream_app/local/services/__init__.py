"""Local development services (Kafka, Redis) started, checked and stopped by ``driftstream``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream_app.local.services.base import LocalService
from stream_app.local.services.kafka import LocalKafka
from stream_app.local.services.process import ServiceError
from stream_app.local.services.redis import LocalRedis
from stream_app.settings import Settings

__all__ = [
    "LocalKafka",
    "LocalRedis",
    "ServiceError",
    "ServiceStatus",
    "local_services",
    "services_down",
    "services_status",
    "services_up",
]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    state: str  # "started" | "ours, already running" | "external, reused" | "up" | "down" ...


def local_services(settings: Settings) -> list[LocalService]:
    return [
        LocalKafka(settings.kafka, settings.services),
        LocalRedis(settings.redis, settings.services),
    ]


def services_up(settings: Settings, say: Callable[[str], None]) -> list[ServiceStatus]:
    """Make Kafka and Redis answer at the configured addresses, starting what is missing."""
    return [ServiceStatus(s.name, s.address, s.up(say)) for s in local_services(settings)]


def services_down(settings: Settings) -> list[ServiceStatus]:
    """Stop what ``services_up`` started (by pid file); leave anything else alone."""
    return [
        ServiceStatus(
            s.name,
            s.address,
            "stopped" if s.down() else "not ours, left alone" if s.answers() else "not running",
        )
        for s in local_services(settings)
    ]


def services_status(settings: Settings) -> list[ServiceStatus]:
    """Whether each service answers, and whether it is one we started."""
    statuses = []
    for s in local_services(settings):
        answering = s.answers()
        ours = s.process.pid() is not None
        state = {
            (True, True): "up (ours)",
            (True, False): "up (external)",
            (False, True): "not answering (our process is running)",
            (False, False): "down",
        }[(answering, ours)]
        statuses.append(ServiceStatus(s.name, s.address, state))
    return statuses
