"""Runtimes: thin adapters that run the pipeline's processors (:mod:`pipeline`) on a stream
platform. Each owns its I/O, transactions or commits, state changelogs and recovery; all pass
the same runtime conformance suite (``tests/integration/test_worker.py``, ``tests/faults``).

:data:`RUNTIMES` is the one list of them: the settings' ``worker.engine`` choice, the
conformance suite's :data:`ENGINES`, ``driftstream worker --engine`` and its help text all
come from it. Each names its runner by module and function, imported only when that runtime
is chosen (:meth:`Runtime.runner`): choosing one loads none of another's libraries, and the
settings read the names without importing any runtime (this module imports nothing of the
project). Adding a runtime: docs/architecture.md, "How to extend".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream_app.metrics import WorkerMetrics
    from stream_app.settings import Settings

Engine = str
"""The name of a runtime in :data:`RUNTIMES`: users choose one as the *engine*
(``worker.engine``, ``--engine``), the code calls what it names a runtime."""
Runner = Callable[["Settings", "WorkerMetrics", str], None]
"""Runs a worker in the foreground until SIGINT/SIGTERM: the settings, the worker's metrics
(it serves their registry), the log level (crit, error, warn, info or debug)."""


@dataclass(frozen=True)
class Runtime:
    """A runtime: its runner (``module:function``, imported when chosen), its name in prose
    (benchmark tables) and a one-line description (the CLI's help)."""

    name: Engine
    runner_path: str
    title: str
    description: str

    def runner(self) -> Runner:
        """The runner function, its module imported now."""
        module, _, function = self.runner_path.partition(":")
        runner: Runner = getattr(importlib.import_module(module), function)
        return runner


RUNTIMES: dict[Engine, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime(
            "kafka",
            "stream_app.runtimes.kafka.worker:run_kafka_worker",
            "Kafka-native",
            "confluent-kafka in batches, exactly once with Kafka transactions (the default)",
        ),
        Runtime(
            "faust",
            "stream_app.runtimes.faust.worker:run_faust_worker",
            "Faust",
            "faust-streaming agents, at-least-once made idempotent, for teams that run Faust",
        ),
    )
}
"""Every runtime, the default first."""

ENGINES: tuple[Engine, ...] = tuple(RUNTIMES)
"""Every runtime's name; the conformance suite runs on each."""
DEFAULT_ENGINE: Engine = ENGINES[0]


class UnknownRuntimeError(ValueError):
    """An engine name not in :data:`RUNTIMES` (the message names the choices)."""


def runtime(name: str) -> Runtime:
    """The runtime called ``name``; :class:`UnknownRuntimeError` if there is none."""
    try:
        return RUNTIMES[name]
    except KeyError:
        choices = ", ".join(ENGINES)
        raise UnknownRuntimeError(f"unknown engine {name!r}: choose one of {choices}") from None


def engines_help() -> str:
    """One line per runtime: ``name: description``."""
    return "; ".join(f"{r.name}: {r.description}" for r in RUNTIMES.values())


LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
LEVELS = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}
