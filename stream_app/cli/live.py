"""``driftstream worker``, ``alerts`` and ``state``: run the stream app and look at its output."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from schemas.errors import InvalidEvent
from stream_app.alerts_feed import format_alert, read_alerts
from stream_app.cli.console import console, errors, fail, load_settings, login_or_fail
from stream_app.preflight import PreflightError, redis_address
from stream_app.runtimes import LEVELS, LOG_FORMAT, UnknownRuntimeError, engines_help, runtime
from stream_app.topics import TopicError


def worker(
    loglevel: Annotated[str, typer.Option(help="crit, error, warn, info or debug.")] = "info",
    engine: Annotated[
        str | None,
        typer.Option(
            help=f"The runtime, one of {engines_help()} (default: DRIFTSTREAM_WORKER__ENGINE)."
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes on this machine, members of one consumer group (metrics "
            "port and instance id: one each, the configured one plus the process number).",
        ),
    ] = 1,
) -> None:
    """Run the stream worker: join, detect, publish alerts, keep the Redis view (Ctrl-C stops).

    Exits with an error at once if Kafka or Redis refuse the configured credentials, and stops
    (with that error) if Kafka refuses them later. With ``--processes N`` it runs N workers and
    Ctrl-C (or SIGTERM) stops them all; one that dies is an error that stops the others.
    """
    from stream_app.runtimes.run import run_worker

    settings = load_settings()
    if engine is not None:
        try:
            settings.worker.engine = runtime(engine).name
        except UnknownRuntimeError as exc:
            fail(escape(str(exc)), code=2)
    if loglevel not in LEVELS:
        fail(f"unknown log level {loglevel!r}: choose one of {', '.join(LEVELS)}", code=2)
    port = settings.worker.metrics_port
    if port and port + processes - 1 > 65535:
        fail(f"--processes {processes} needs metrics ports {port} to {port + processes - 1}", 2)
    login_or_fail(settings, kafka=True, redis=True)
    if processes > 1:
        import logging
        import sys

        from stream_app.worker_process import run_worker_processes

        logging.basicConfig(stream=sys.stderr, level=LEVELS[loglevel], format=LOG_FORMAT)
        raise typer.Exit(run_worker_processes(settings, processes, loglevel))
    try:
        run_worker(settings, loglevel)
    except PreflightError as exc:  # Kafka refused the login while the worker ran
        fail(escape(str(exc)))
    except TopicError as exc:  # a topic it cannot make or use as it is
        fail(escape(str(exc)))


def alerts(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for alerts.")
    ] = False,
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert per line.")] = False,
    idle_seconds: Annotated[
        float, typer.Option(help="Without --follow: stop after this long without a new alert.")
    ] = 3.0,
) -> None:
    """Print the alerts topic from the beginning (and, with --follow, as alerts arrive)."""
    settings = load_settings()
    login_or_fail(settings, kafka=True)
    try:
        for item in read_alerts(settings, follow=follow, idle_seconds=idle_seconds):
            if isinstance(item, InvalidEvent):
                errors.print(f"[yellow]skipping an invalid alert: {item.reason}[/yellow]")
            elif model is None or item.model_id == model:
                text = item.model_dump_json() if as_json else format_alert(item)
                console.print(text, soft_wrap=True, markup=False)
    except KeyboardInterrupt:
        pass


def state(
    model: Annotated[str | None, typer.Argument(help="One model id (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print the live per-model state from Redis, and each model's data-quality problems."""
    import redis

    from stream_app.live_state.keys import LiveStateKeys
    from stream_app.live_state.reader import read_live_state
    from stream_app.preflight import redis_client

    settings = load_settings()
    login_or_fail(settings, redis=True)
    try:
        with redis_client(
            settings.redis, socket_connect_timeout=2.0, decode_responses=True
        ) as client:
            view = read_live_state(client, LiveStateKeys(settings.redis.key_prefix), model)
    except redis.RedisError as exc:
        fail(escape(f"Redis at {redis_address(settings.redis)} failed: {exc}"))
    if as_json:
        console.print(json.dumps(view, indent=2, sort_keys=True), markup=False)
        return
    pipeline = view.pop("_pipeline", {})
    if not view:
        _show_pipeline(pipeline)  # a worker that reads nothing has no models, but problems
        fail(f"no state for {model!r}" if model else "no models in Redis yet", code=3)
    columns = {
        "predictions": "predictions",
        "labels": "labels",
        "joined": "joined",
        "expired_predictions": "expired",
        "orphan_labels": "orphan labels",
        "late_observations": "late",
        "accuracy": "accuracy",
        "estimated_accuracy": "est. accuracy",
        "status": "status",
        "alerts": "alerts",
    }
    table = Table("model", *columns.values())
    for model_id, fields in view.items():
        table.add_row(model_id, *(_short(fields.get(c, _UNSET.get(c, "0"))) for c in columns))
    console.print(table)
    for model_id, fields in view.items():
        if quality := fields.get("quality"):
            line = f"{model_id} quality: {_quality(quality)}{_late(fields)}"
            console.print(line, markup=False, soft_wrap=True)
        if why := _explained(fields):
            console.print(f"{model_id} {why}", markup=False, soft_wrap=True)
    _show_pipeline(pipeline)


def _explained(fields: dict[str, Any]) -> str | None:
    """Why the model's latest explained alert fired, as one line: its signal (``error_rate``,
    ``abs_error``, or the label-free ``estimated_accuracy``), its alert id and where the error
    (for ``estimated_accuracy``, the estimated error) changed: its top slices, or broad. None
    before any explained alert."""
    from schemas.events import Explanation
    from stream_app.alerts_feed import format_explanation

    if (text := fields.get("last_explanation")) is None:
        return None
    explanation = Explanation.model_validate_json(text)
    signal, alert_id = fields.get("last_explained_signal"), fields.get("last_explained_alert_id")
    return f"{signal} changed (alert {alert_id}), {format_explanation(explanation)}"


def _quality(quality: dict[str, dict[str, int]]) -> str:
    """A model's data-quality counts on one line: each feature with problems and its nonzero
    counts, then how many features have none."""
    problems = {
        feature: ", ".join(f"{problem} {n}" for problem, n in counts.items() if n)
        for feature, counts in sorted(quality.items())
    }
    shown = [f"{feature} {text}" for feature, text in problems.items() if text]
    clean = len(problems) - len(shown)
    return "; ".join([*shown, f"{clean} of {len(problems)} features without problems"])


def _late(fields: dict[str, Any]) -> str:
    """The label horizon, and what came too late for the traffic and label-health signals (or
    for the join: labels after the join's TTL), when anything did."""
    late = {
        "predictions too late for volume": int(fields.get("late_for_volume", 0)),
        "labels past the horizon": int(fields.get("labels_past_horizon", 0)),
        "labels after the join's TTL (orphans: raise join.ttl_seconds)": int(
            fields.get("orphan_labels", 0)
        ),
    }
    horizon = fields.get("label_horizon_seconds")
    shown = f"; labels counted within {float(horizon):,.0f} s" if horizon else ""
    return shown + "".join(f"; {n} {what}" for what, n in late.items() if n)


def _show_pipeline(pipeline: dict[str, str]) -> None:
    """The pipeline's counters, and a red line for each that means input is being missed."""
    if pipeline:
        console.print("pipeline: " + ", ".join(f"{k} {v}" for k, v in sorted(pipeline.items())))
    for name, meaning in PROBLEMS.items():
        if int(pipeline.get(name, 0)):
            errors.print(f"[red]problem: {pipeline[name]} {meaning} (see the worker log)[/red]")


PROBLEMS = {
    "unreadable_topic": "reads refused: a topic missing or not allowed (ACLs)",
    "wrong_partition": "input records off their key's partition: joins lost without the hop",
    "stuck_commits": "commits failed the same way again and again: nothing is committed",
}
"""Pipeline counters that mean the worker is missing input or stuck, and what each says."""

_UNSET = {"accuracy": "-", "estimated_accuracy": "-", "status": "-"}
"""What a model without that field shows (no outcomes yet: no accuracy; no scores or no
calibration yet: no estimate); counters show 0."""


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.3f}" if not number.is_integer() else str(int(number))
