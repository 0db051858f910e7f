"""A background process that we started and can find again by its pid file.

``stop`` signals only the pid recorded in our own pid file, and only while that pid still runs
the command we started (checked against ``/proc/<pid>/cmdline``), so a recycled pid or somebody
else's server is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service could not be fetched, started or reached; the message says why."""


@dataclass(frozen=True)
class ManagedProcess:
    """A named background process with its pid file and log file under ``state_dir``."""

    name: str
    state_dir: Path
    marker: str  # a string that appears in the command line of the process we start

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid from our pid file if that process is alive and still ours, else None.

        "Ours" means the marker appears in its command line. A server that rewrites its
        command line (redis does) reads as empty for a moment while it starts, so right after
        ``start`` wait on :func:`is_alive` of the returned pid instead.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self.marker in _command_line(pid) else None

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start ``argv`` detached, logging to the log file; record and return its pid."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(str(proc.pid))
        # /proc/<pid>/cmdline reads empty for a moment after the fork (seen on a busy machine)
        wait_until(lambda: bool(_command_line(proc.pid)) or proc.poll() is not None, 5.0, 0.01)
        return proc.pid

    def stop(self, timeout: float = 30.0, pid: int | None = None) -> bool:
        """Stop our process (SIGTERM, then SIGKILL after ``timeout``); True if one was running.

        ``pid`` names the process when the caller knows it (it has just started it).
        """
        pid = pid or self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not is_alive(pid), timeout):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not is_alive(pid), 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log written)"


def write_private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable only by us (0600): configuration with secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def _command_line(pid: int) -> str:
    """The command line of ``pid`` ("" if it has none or is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (reaping it first if it is our exited child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
