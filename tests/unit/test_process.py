"""ManagedProcess stops only what it started, identified by pid file and command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stream_app.local.services.process import ManagedProcess, is_alive

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "driftstream-test-sleeper"]


def test_start_find_and_stop_our_process(tmp_path: Path) -> None:
    managed = ManagedProcess("sleeper", tmp_path, marker="driftstream-test-sleeper")
    pid = managed.start(SLEEPER)
    assert managed.pid() == pid
    assert managed.stop(timeout=10)
    assert not is_alive(pid)
    assert not managed.pid_file.exists()
    assert not managed.stop()  # nothing of ours is left


def test_a_pid_file_pointing_at_someone_else_is_left_alone(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        managed = ManagedProcess("sleeper", tmp_path, marker="driftstream-test-sleeper")
        managed.pid_file.write_text(str(stranger.pid))  # a recycled pid, say
        assert managed.pid() is None
        assert not managed.stop()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
