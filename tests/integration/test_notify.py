"""``driftstream notify`` against a real Kafka and a real local HTTP receiver (and a real
script for ``--exec``), run as users run it: a subprocess of the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.codec import encode
from schemas.events import DriftAlert, WindowStats
from stream_app.settings import Settings
from stream_app.topics import Topics
from tests.integration.kafka_io import consume
from tests.pipeline import header

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def drift_alert(n: int, model_id: str = "fraud", **fields: Any) -> DriftAlert:
    """The ``n``-th test alert; each is its own incident unless ``incident_id`` is given."""
    at = T0 + timedelta(minutes=n)
    values: dict[str, Any] = {
        "alert_id": f"alert-{n:03d}",
        "model_id": model_id,
        "model_version": "3",
        "signal": "error_rate",
        "detector": "adwin",
        "kind": "concept",
        "severity": "critical",
        "detected_at": at,
        "event_time": at,
        "before": WindowStats(mean=0.1, n=900),
        "after": WindowStats(mean=0.4, n=100),
        **fields,
    }
    values.setdefault("incident_id", values["alert_id"])
    return DriftAlert(**values)


def publish(settings: Settings, topics: Topics, alerts: list[DriftAlert | bytes]) -> None:
    """Publish as the worker does: keyed by model id (raw bytes: a record that is no alert)."""
    producer = Producer(settings.kafka.client_config())
    for alert in alerts:
        if isinstance(alert, bytes):
            producer.produce(topics.alerts, key=b"junk", value=alert)
        else:
            producer.produce(topics.alerts, key=alert.model_id.encode(), value=encode(alert))
    assert producer.flush(30) == 0


@dataclass
class Request:
    path: str
    key: str | None
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    """A local HTTP server that records every POST and answers as told: ``answers[alert_id]``
    is a list of statuses handed out in turn (then 200); ``status_of_path`` answers every
    request to a path with one status; ``delay`` seconds before each answer."""

    url: str
    requests: list[Request] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    status_of_path: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, key: str | None, body: dict[str, Any]) -> int:
        with self.lock:
            statuses = self.answers.get(body.get("alert_id", ""), [])
            status = self.status_of_path.get(path) or (statuses.pop(0) if statuses else 200)
            self.requests.append(Request(path, key, body, status))
            return status

    def taken(self, path: str = "/hook") -> Counter[str]:
        """How many times each alert was accepted (answered 200) at ``path``."""
        with self.lock:
            return Counter(
                r.body["alert_id"] for r in self.requests if r.path == path and r.status == 200
            )

    def tries(self, path: str = "/hook") -> Counter[str]:
        """How many times each alert was sent to ``path``, whatever the answer."""
        with self.lock:
            return Counter(r.body["alert_id"] for r in self.requests if r.path == path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received = state["receiver"]
            time.sleep(received.delay)  # a slow receiver, not synchronisation
            status = received.answer(self.path, self.headers.get("Idempotency-Key"), body)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"busy" if status >= 500 else b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()


def notify_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "DRIFTSTREAM_TOPICS__PREFIX": settings.topics.prefix,
    }


def start_notify(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "stream_app", "notify", *args]
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=notify_env(settings)
        )


def run_notify(settings: Settings, log: Path, *args: str, timeout: float = 120) -> str:
    """Run ``notify`` until it has been idle for 3 s; its output (it must exit 0)."""
    process = start_notify(settings, log, "--idle-seconds", "3", *args)
    assert process.wait(timeout) == 0, log.read_text()
    return log.read_text()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def group_lag(settings: Settings, topic: str, group: str) -> int:
    """Alerts of ``topic`` the consumer group has not committed past."""
    consumer = Consumer({**settings.kafka.client_config(), "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions
        }
        return sum(ends[tp.partition] - max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()


def dead_letters(settings: Settings, topics: Topics, expected: int) -> list[dict[str, str]]:
    messages = consume(settings, [topics.deadletter], expected=expected, timeout=30)
    return [
        {
            "reason": header(m, "driftstream-reason"),
            "sink": header(m, "driftstream-sink"),
            "value": (m.value() or b"").decode(errors="replace"),
        }
        for m in messages
    ]


def stopped_midway(
    settings: Settings, topics: Topics, receiver: Receiver, log: Path, how: signal.Signals
) -> list[DriftAlert]:
    """Publish 40 alerts, start ``notify`` against a slow receiver, and send it ``how`` after
    its first 10 deliveries; the alerts, once it has exited."""
    alerts = [drift_alert(n, model_id=f"model-{n % 7}") for n in range(40)]
    publish(settings, topics, list(alerts))
    receiver.delay = 0.05
    first = start_notify(settings, log, "--webhook", f"{receiver.url}/hook")
    wait_until(lambda: len(receiver.requests) >= 10, 60, "the first deliveries")
    first.send_signal(how)
    code = first.wait(30)
    if how == signal.SIGTERM:
        assert code == 0, log.read_text()
    return alerts


def test_each_alert_is_delivered_once_across_a_restart(
    settings: Settings, topics: Topics, receiver: Receiver, tmp_path: Path
) -> None:
    log = tmp_path / "notify.log"
    alerts = stopped_midway(settings, topics, receiver, log, signal.SIGTERM)
    stopped_after = len(receiver.requests)
    assert stopped_after < len(alerts), "stopped too late to test a restart"

    output = run_notify(settings, log, "--webhook", f"{receiver.url}/hook")

    assert receiver.taken() == Counter(a.alert_id for a in alerts)  # each exactly once
    for request in receiver.requests:
        assert request.key == request.body["alert_id"]  # the Idempotency-Key
        assert request.body["text"].startswith("driftstream: ")
        assert request.body["text"].endswith("new incident")
    by_id = {request.body["alert_id"]: request.body for request in receiver.requests}
    assert by_id["alert-007"]["model_id"] == "model-0"
    assert by_id["alert-007"]["after"] == {"mean": 0.4, "n": 100}
    assert f"{len(alerts) - stopped_after} delivered" in output.splitlines()[-1]
    assert group_lag(settings, topics.alerts, f"{settings.topics.prefix}notify") == 0


def test_a_killed_notify_repeats_at_most_the_alert_it_was_delivering(
    settings: Settings, topics: Topics, receiver: Receiver, tmp_path: Path
) -> None:
    log = tmp_path / "notify.log"
    alerts = stopped_midway(settings, topics, receiver, log, signal.SIGKILL)

    run_notify(settings, log, "--webhook", f"{receiver.url}/hook")  # once the session ends

    taken = receiver.taken()
    assert set(taken) == {a.alert_id for a in alerts}
    assert sum(taken.values()) - len(alerts) <= 1, taken  # the one being delivered, if any
    assert all(r.key == r.body["alert_id"] for r in receiver.requests)  # a receiver can dedupe


def test_a_503_is_retried_and_a_refusal_or_the_cap_is_dead_lettered(
    settings: Settings, topics: Topics, receiver: Receiver, tmp_path: Path
) -> None:
    retried, refused, capped = drift_alert(1), drift_alert(2), drift_alert(3)
    receiver.answers = {
        retried.alert_id: [503, 503],
        refused.alert_id: [404],
        capped.alert_id: [503] * 9,
    }
    publish(settings, topics, [retried, refused, capped, b"{not an alert"])

    output = run_notify(
        settings,
        tmp_path / "notify.log",
        "--webhook",
        f"{receiver.url}/hook",
        "--attempts",
        "3",
        "--backoff",
        "0.1",
    )

    assert receiver.tries() == {retried.alert_id: 3, refused.alert_id: 1, capped.alert_id: 3}
    assert {r.key for r in receiver.requests if r.body["alert_id"] == retried.alert_id} == {
        retried.alert_id
    }
    letters = dead_letters(settings, topics, expected=3)
    reasons = {
        "junk" if d["sink"] == "notify" else json.loads(d["value"])["alert_id"]: d for d in letters
    }
    assert "refused: HTTP 404" in reasons[refused.alert_id]["reason"]
    assert "HTTP 503" in reasons[capped.alert_id]["reason"]
    assert "after 3 attempts" in reasons[capped.alert_id]["reason"]
    assert reasons[capped.alert_id]["sink"].startswith("webhook http://127.0.0.1:")
    assert reasons["junk"]["reason"].startswith("invalid alert: ")
    assert "4 read: 1 delivered, 4 retried, 2 failed, 0 filtered out, 1 invalid" in output
    assert group_lag(settings, topics.alerts, f"{settings.topics.prefix}notify") == 0


def test_a_sink_that_took_an_alert_gets_it_once_when_notify_restarts_while_another_retries(
    settings: Settings, topics: Topics, receiver: Receiver, tmp_path: Path
) -> None:
    alert = drift_alert(1)
    receiver.status_of_path = {"/down": 503}
    publish(settings, topics, [alert])
    log = tmp_path / "notify.log"
    hooks = ("--webhook", f"{receiver.url}/up", "--webhook", f"{receiver.url}/down")
    first = start_notify(settings, log, *hooks, "--attempts", "100", "--backoff", "0.1")
    wait_until(lambda: receiver.tries("/down")[alert.alert_id] >= 3, 60, "retries of /down")
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0, log.read_text()
    receiver.status_of_path = {}

    run_notify(settings, log, *hooks)

    assert receiver.taken("/up") == {alert.alert_id: 1}
    assert receiver.taken("/down") == {alert.alert_id: 1}
    assert group_lag(settings, topics.alerts, f"{settings.topics.prefix}notify") == 0


def test_exec_runs_a_script_that_records_the_alerts_and_retries_its_failures(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    record, marker = tmp_path / "retrains.jsonl", tmp_path / "failed-once"
    script = tmp_path / "retrain.sh"
    script.write_text(
        "#!/bin/sh\n"
        "set -e\n"
        f"if [ ! -e {marker} ]; then touch {marker}; echo 'registry busy' >&2; exit 75; fi\n"
        'printf "%s " "$DRIFTSTREAM_MODEL_ID" >> ' + str(record) + "\n"
        f"cat >> {record}\n"
        f"echo >> {record}\n"
    )
    script.chmod(0o755)
    alerts = [drift_alert(n, model_id=f"model-{n}") for n in range(3)]
    publish(settings, topics, list(alerts))

    output = run_notify(
        settings, tmp_path / "notify.log", "--exec", str(script), "--backoff", "0.1"
    )

    recorded = [line.split(" ", 1) for line in record.read_text().splitlines()]
    assert sorted((model, json.loads(body)["alert_id"]) for model, body in recorded) == [
        (a.model_id, a.alert_id) for a in alerts
    ]  # each once, with its model in the environment (models are on different partitions)
    assert "exit 75: registry busy" in output
    assert "3 delivered, 1 retried, 0 failed" in output


def test_filters_leave_alerts_out_and_commit_past_them(
    settings: Settings, topics: Topics, receiver: Receiver, tmp_path: Path
) -> None:
    first = drift_alert(1)
    alerts = [
        first,
        drift_alert(2, incident_id=first.alert_id),  # a follow-up of the same incident
        drift_alert(3, severity="warning"),
        drift_alert(4, kind="data", signal="feature:age"),
        drift_alert(5, model_id="churn"),
    ]
    publish(settings, topics, list(alerts))
    url = f"{receiver.url}/hook"
    filters = ("--model", "fraud", "--kind", "concept", "--min-severity", "critical")

    run_notify(settings, tmp_path / "a.log", "--webhook", url, *filters, "--group", "a")
    run_notify(
        settings, tmp_path / "b.log", "--webhook", url, "--new-incidents-only", "--group", "b"
    )

    delivered = [r.body["alert_id"] for r in receiver.requests]
    assert delivered[:2] == [first.alert_id, alerts[1].alert_id]
    assert f"incident [{first.alert_id[:12]}]" in receiver.requests[1].body["text"]
    assert sorted(delivered[2:]) == sorted(a.alert_id for a in alerts if a is not alerts[1])
    assert group_lag(settings, topics.alerts, "a") == 0
    assert group_lag(settings, topics.alerts, "b") == 0


def test_bad_targets_and_missing_topics_are_clear_errors(
    settings: Settings, tmp_path: Path
) -> None:
    def notify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stream_app", "notify", *args],
            capture_output=True,
            text=True,
            env=notify_env(settings),
            timeout=60,
        )

    bad_url = notify("--webhook", "hooks.example.com/x")
    assert bad_url.returncode == 2
    assert "not a webhook URL" in bad_url.stderr
    missing = notify("--exec", "no-such-retrain-command --now")
    assert missing.returncode == 2
    assert "'no-such-retrain-command' is not an executable found on PATH" in missing.stderr
    nowhere = notify()
    assert nowhere.returncode == 2
    assert "nowhere to deliver" in nowhere.stderr
    no_topic = notify("--webhook", "http://127.0.0.1:9/hook")  # this test made no topics
    assert no_topic.returncode == 1
    assert f"topic '{settings.topics.prefix}alerts' does not exist" in no_topic.stderr


def test_the_readme_retrain_hook_records_the_first_alert_of_each_incident(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    script = tmp_path / "retrain.sh"
    script.write_text(readme.split("cat > retrain.sh <<'HOOK'\n", 1)[1].split("\nHOOK\n", 1)[0])
    script.chmod(0o755)
    first = drift_alert(1)
    publish(settings, topics, [first, drift_alert(2, incident_id=first.alert_id), drift_alert(3)])

    hook = ("--exec", "./retrain.sh", "--new-incidents-only", "--idle-seconds", "3")
    process = subprocess.run(
        [sys.executable, "-m", "stream_app", "notify", *hook],
        cwd=tmp_path,
        env=notify_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert process.returncode == 0, process.stderr
    log = (tmp_path / "retrain.log").read_text().splitlines()
    assert sorted(line.split(", incident ")[1] for line in log) == ["alert-001", "alert-003"]
    requests = (tmp_path / "retrain-requests.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["alert_id"] for line in requests) == ["alert-001", "alert-003"]
