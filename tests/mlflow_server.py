"""A real local MLflow tracking server (the ``mlflow`` extra) for the MLflow sink's tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MLFLOW = Path(sys.executable).with_name("mlflow")
START_TIMEOUT = 120.0
"""Seconds a starting server has to answer ``GET /health``."""
STOP_TIMEOUT = 30.0
LOG_TAIL = 3000
"""Characters of the server's output a failure shows."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-LOG_TAIL:]


def wait_healthy(process: subprocess.Popen[bytes], uri: str, log: Path) -> None:
    """Return once the server answers ``/health``; fail with its output if it exits first or
    takes longer than ``START_TIMEOUT``."""
    deadline = time.monotonic() + START_TIMEOUT
    while not healthy(uri):
        try:
            code = process.wait(timeout=0.25)  # the poll interval, and an early exit noticed
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server unhealthy after {START_TIMEOUT:g} s:\n{log_tail(log)}")
            continue
        pytest.fail(f"mlflow server exited with {code}:\n{log_tail(log)}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group (uvicorn forks a worker), kill what outlives
    ``STOP_TIMEOUT``, and check that nothing of it is left."""
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # polls: a worker exits just after its parent
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"mlflow server's workers outlived it by {STOP_TIMEOUT:g} s (killed)")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI (``http://127.0.0.1:<port>``) of an ``mlflow server`` with its own SQLite store
    and artifact root, started for the session and stopped at its end."""
    if not MLFLOW.exists():
        pytest.fail(f"{MLFLOW} is missing: run scripts/setup.sh (it installs the mlflow extra)")
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--default-artifact-root",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, uri, log)
        yield uri
    finally:
        stop(process)
