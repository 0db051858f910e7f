"""The README's first command: the demo runs end to end, judges its own result, cleans up, and
stops everything it started when interrupted."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from stream_app.live_state.keys import LiveStateKeys
from stream_app.live_state.reader import read_model_alerts
from stream_app.local.services.process import is_alive, wait_until
from stream_app.preflight import redis_client
from stream_app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "stream_app", "demo"]


def test_demo_alerts_on_the_drifting_models_only(services: Settings, tmp_path: Path) -> None:
    report = tmp_path / "demo.png"
    result = subprocess.run(
        [*DEMO, "--duration", "15", "--rate", "600", "--report", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "as expected" in output
    assert "fraud concept drift on error_rate" in output
    assert "churn data drift on feature:" in output
    assert "credit data drift on missing:hvalue" in output
    assert "ALERT" not in "".join(line for line in output.splitlines() if " stable " in line)
    summary = output[output.index("what happened") :]
    rows = ("predictions", "labels", "joined", "expired", "accuracy before", "alerts", "incidents")
    for row in rows:
        assert re.search(rf"│ {row} +│", summary), row
    assert re.search(r"error_rate\s.*│", summary)
    assert re.search(r"adwin \+\d+ \(\d+ s\)", summary)  # a delay from the true drift start
    assert summary.count(" in 1 incident ") == 3  # under each drifting model's alert count
    keys = re.search(r"Redis keys (\S+)\*", output)
    assert keys is not None
    with redis_client(services.redis, decode_responses=True) as client:
        for model_id in ("fraud", "churn", "credit"):
            alerts = read_model_alerts(client, LiveStateKeys(keys.group(1)), model_id)
            # one episode: the demo's stream is minutes of event time, under the incident gap
            assert {a.incident_id for a in alerts} <= {a.alert_id for a in alerts}, alerts
            assert len({a.incident_id for a in alerts}) == 1, alerts
    assert f"report: {report}" in output
    assert report.read_bytes().startswith(b"\x89PNG")
    prefix = re.search(r"topics (demo-\S+\.)\*", output)
    assert prefix is not None
    deleted = re.search(r"deleted the demo's (\d+) topics", output)
    assert deleted is not None
    assert int(deleted.group(1)) >= 5  # the public ones and the worker's changelogs
    topics = AdminClient(services.kafka.client_config()).list_topics(timeout=10).topics
    assert [name for name in topics if name.startswith(prefix.group(1))] == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def descendants(root: int) -> set[int]:
    """The pids whose chain of parents leads to ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class DemoRun:
    """``driftstream demo`` in its own session (as a terminal runs it), on private services;
    its output lines and every process it ever had under it are collected as it runs."""

    def __init__(self, tmp_path: Path) -> None:
        self.state_dir = tmp_path / "services"
        self.redis_port = free_port()
        env = {
            **os.environ,
            "DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "DRIFTSTREAM_SERVICES__KAFKA_CONTROLLER_PORT": str(free_port()),
            "DRIFTSTREAM_SERVICES__STATE_DIR": str(self.state_dir),
            "DRIFTSTREAM_REDIS__URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "DRIFTSTREAM_WORKER__DATA_DIR": str(tmp_path / "worker"),
        }
        self.worker_dir = tmp_path / "worker"
        self.process = subprocess.Popen(
            [*DEMO, "--duration", "120", "--report", str(tmp_path / "demo.png")],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.seen: dict[int, str] = {}
        self._done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            for pid in descendants(self.process.pid) - self.seen.keys():
                self.seen[pid] = command_line(pid)

    def running(self, what: str) -> bool:
        """Whether a process with ``what`` in its command line ever ran under the demo."""
        return any(what in cmdline for cmdline in self.seen.values())

    def alive(self, what: str) -> bool:
        """Whether one runs now."""
        return any(what in cmd and is_alive(pid) for pid, cmd in list(self.seen.items()))

    def interrupt(self) -> int:
        """Ctrl-C as a terminal sends it (to the whole foreground process group)."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=240)
        self._done.set()
        return code

    def stop(self) -> None:
        """Only if the test failed before: leave nothing behind."""
        self._done.set()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        for pid_file in self.state_dir.glob("*.pid"):
            pid = int(pid_file.read_text())
            if str(self.state_dir) in command_line(pid) or "redis-server" in command_line(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo_run(tmp_path: Path) -> Iterator[DemoRun]:
    run = DemoRun(tmp_path)
    yield run
    run.stop()


@pytest.mark.parametrize(
    ("phase", "started"),
    [
        ("while Kafka starts", lambda run: run.running("kafka.Kafka")),
        (
            "while traffic is sent",
            lambda run: (
                any("sending" in line for line in run.lines) and run.alive("stream_app worker")
            ),
        ),
    ],
)
def test_ctrl_c_stops_everything_the_demo_started(
    demo_run: DemoRun, phase: str, started: Callable[[DemoRun], bool]
) -> None:
    assert wait_until(lambda: started(demo_run), timeout=180), "".join(demo_run.lines)
    assert demo_run.process.poll() is None, "".join(demo_run.lines)
    code = demo_run.interrupt()
    output = "".join(demo_run.lines)
    assert code == 130, output
    assert "interrupted" in output
    assert "Traceback" not in output
    assert demo_run.running("kafka.Kafka"), phase
    if phase == "while traffic is sent":
        assert demo_run.running("redis-server")
        assert demo_run.running("stream_app worker")
    left = {pid: cmd for pid, cmd in demo_run.seen.items() if is_alive(pid)}
    assert left == {}, output
    assert list(demo_run.state_dir.glob("*.pid")) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", demo_run.redis_port)) != 0
    assert not demo_run.worker_dir.exists() or list(demo_run.worker_dir.iterdir()) == []
