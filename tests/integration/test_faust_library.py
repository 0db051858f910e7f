"""The faust-streaming library works on our broker: a Faust worker built by
``stream_app.runtimes.faust.app.create_app`` (our broker settings, credentials and seek fence),
running a bare echo agent (``tests/integration/echo_worker.py``), consumes and produces.

It does not run driftstream's Faust runtime (its join and detection stages): the tests that
take the ``engine`` fixture run that, e.g. ``tests/integration/test_worker.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Producer

from stream_app.settings import Settings
from stream_app.topics import Topics
from tests.integration.kafka_io import consume

REPO = Path(__file__).resolve().parents[2]


def test_a_faust_library_worker_consumes_and_produces_on_our_broker(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    source, sink = topics.predictions, topics.alerts
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.echo_worker", source, sink, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        producer = Producer(settings.kafka.client_config())
        sent = {f"r{i}".encode(): f"event-{i}".encode() for i in range(200)}
        for key, value in sent.items():
            producer.produce(source, key=key, value=value)
        assert producer.flush(30) == 0
        received = consume(settings, [sink], expected=len(sent), timeout=90)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    log = output.decode(errors="replace")[-3000:]
    assert {m.key(): m.value() for m in received} == {k: v.upper() for k, v in sent.items()}, log
