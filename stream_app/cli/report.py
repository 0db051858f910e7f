"""``driftstream report``: a PNG of the models' accuracy, precision, recall, alerts and signals.

Examples::

    driftstream report --out report.png                # every model in Redis
    driftstream report --model fraud --out fraud.png --threshold 0.8
    driftstream replay events.jsonl --report replay.png  # the same picture from a recording

The points are the ``model:{id}:history`` streams the worker writes to Redis (one per second
of a model that changed, the latest 3,600); the alerts are the ``alerts:{id}`` streams. The
figure is drawn by :mod:`stream_app.report_chart`. Exit codes: 0 written, 2 Redis did not answer or
a model is unknown, 3 no model in Redis yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.markup import escape

from stream_app.cli.console import console, fail, load_settings


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The PNG file to write.")] = Path(
        "driftstream-report.png"
    ),
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="A model id; repeat for several (default: all)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Accuracy threshold line (default: each model's baseline - 0.05).",
        ),
    ] = None,
) -> None:
    """Draw the live models' accuracy, precision and recall over time, with their alerts."""
    import redis

    from stream_app.live_state.keys import LiveStateKeys
    from stream_app.preflight import redis_client
    from stream_app.report_chart import live_series, write_report

    settings = load_settings()
    keys = LiveStateKeys(settings.redis.key_prefix)
    try:
        with redis_client(
            settings.redis, socket_connect_timeout=2.0, decode_responses=True
        ) as client:
            known = sorted(cast(set[str], client.smembers(keys.models)))
            unknown = sorted(set(model or []) - set(known))
            if unknown:
                fail(f"no model {', '.join(map(repr, unknown))} in Redis", code=2)
            if not known:
                fail(f"no models in Redis under {settings.redis.key_prefix!r} yet", code=3)
            series = [live_series(client, keys, model_id) for model_id in model or known]
    except (redis.RedisError, OSError) as exc:
        fail(f"Redis at {escape(settings.redis.url)} did not answer: {escape(str(exc))}", code=2)
    write_report(series, out, title="driftstream: live models", threshold=threshold)
    points = sum(len(s.points) for s in series)
    alerts = sum(len(s.alerts) for s in series)
    console.print(
        f"wrote {escape(str(out))}: {len(series)} models, {points} points, {alerts} alerts",
        soft_wrap=True,
    )
