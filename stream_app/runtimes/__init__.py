"""Runtimes: thin adapters that run the pipeline's processors (:mod:`pipeline`) on a stream
platform. Each owns its I/O, transactions or commits, state changelogs and recovery; all pass
the same runtime conformance suite (``tests/integration/test_worker.py``, ``tests/faults``).

- ``kafka`` (default, :mod:`stream_app.runtimes.kafka`): confluent-kafka in batches, exactly
  once with Kafka transactions.
- ``faust`` (:mod:`stream_app.runtimes.faust`): faust-streaming agents, at-least-once made
  idempotent, for teams that run Faust.
"""

from __future__ import annotations

import logging
import sys

from stream_app.metrics import WorkerMetrics, serving_metrics
from stream_app.settings import Engine, Settings

ENGINES: tuple[Engine, ...] = ("kafka", "faust")
"""Every runtime; the conformance suite runs on each."""

LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
LEVELS = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker of ``settings.worker.engine`` in the foreground until SIGINT/SIGTERM;
    ``loglevel`` is crit, error, warn, info or debug.

    Raises :class:`~stream_app.preflight.PreflightError` when Kafka refused its login while it ran.
    """
    metrics = WorkerMetrics.from_settings(settings.worker)
    if settings.worker.engine == "faust":
        from stream_app.runtimes.faust.worker import run_faust_worker  # Faust is slow to import

        run_faust_worker(settings, metrics, loglevel)
        return
    from stream_app.runtimes.kafka.worker import run_kafka_worker

    logging.basicConfig(stream=sys.stderr, level=LEVELS[loglevel], format=LOG_FORMAT)
    with serving_metrics(metrics.registry, settings.worker):
        run_kafka_worker(settings, metrics)
