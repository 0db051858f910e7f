"""The stream runtime works on our broker: a faust-streaming worker consumes and produces."""

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


def test_faust_worker_consumes_and_produces(
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
