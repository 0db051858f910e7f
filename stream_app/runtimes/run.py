"""Run the worker of the configured runtime (:data:`stream_app.runtimes.RUNTIMES`)."""

from __future__ import annotations

from stream_app.gc_tuning import collect_less_often
from stream_app.metrics import WorkerMetrics
from stream_app.runtimes import runtime
from stream_app.settings import Settings


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker of ``settings.worker.engine`` in the foreground until SIGINT/SIGTERM;
    ``loglevel`` is crit, error, warn, info or debug. Only that runtime's modules are imported.

    Raises :class:`~stream_app.preflight.PreflightError` when Kafka refused its login while it ran.
    """
    collect_less_often()
    metrics = WorkerMetrics.from_settings(settings.worker)
    runtime(settings.worker.engine).runner()(settings, metrics, loglevel)
