"""The stream worker as a child process: for the demo and the integration tests
(:class:`WorkerProcess`), and for ``driftstream worker --processes N``
(:func:`run_worker_processes`: N members of one consumer group on one machine, one command,
one Ctrl-C)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

from stream_app.settings import Settings

log = logging.getLogger(__name__)

STOP_SECONDS = 60.0
"""How long the processes get to stop cleanly (commit, leave the group) before SIGKILL."""


class WorkerProcess:
    """``driftstream worker`` in a child process with extra environment and arguments, logging
    to a file (or, without one, to this process's stdout and stderr). ``own_group`` puts it in
    a process group of its own, so a Ctrl-C at the terminal reaches only its parent, and has
    Linux stop it (SIGTERM) if its parent dies."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_file: Path | None,
        loglevel: str = "warn",
        args: Sequence[str] = (),
        own_group: bool = False,
    ) -> None:
        self.env = {**os.environ, **env}
        self.log_file = log_file
        self.loglevel = loglevel
        self.args = list(args)
        self.own_group = own_group
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        command = [sys.executable, "-m", "stream_app", "worker", "--loglevel", self.loglevel]
        with contextlib.ExitStack() as stack:
            log_out = None
            if self.log_file is not None:
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                log_out = stack.enter_context(self.log_file.open("ab"))
            self.process = subprocess.Popen(
                [*command, *self.args],
                env=self.env,
                stdout=log_out,
                stderr=None if log_out is None else subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0 if self.own_group else None,
                preexec_fn=_stop_with_parent if self.own_group else None,
            )
        return self

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (Faust shuts down cleanly, committing offsets), SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the crash a worker cannot clean up after (no commit, no final flush)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        text = self.log_file.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _stop_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``),
    so a parent killed without warning leaves no worker behind."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def process_env(settings: Settings, index: int) -> dict[str, str]:
    """What worker process ``index`` of several changes in the settings: a metrics port of its
    own (``metrics_port + index``, or 0 when metrics are off), an instance id of its own when
    one is configured (``<id>-<index>``) and a data folder of its own; the same runtime."""
    worker = settings.worker
    env = {
        "DRIFTSTREAM_WORKER__ENGINE": worker.engine,
        "DRIFTSTREAM_WORKER__METRICS_PORT": str(
            worker.metrics_port + index if worker.metrics_port else 0
        ),
        "DRIFTSTREAM_WORKER__DATA_DIR": str(worker.data_dir / f"process-{index}"),
    }
    if worker.instance_id:
        env["DRIFTSTREAM_WORKER__INSTANCE_ID"] = f"{worker.instance_id}-{index}"
    return env


def run_worker_processes(settings: Settings, processes: int, loglevel: str) -> int:
    """Run ``processes`` workers (``driftstream worker`` each, members of the same consumer
    group, :func:`process_env`) until SIGINT or SIGTERM, which stops them all cleanly; the exit
    code. A worker that exits by itself is an ERROR: the others are stopped and the code is 1.
    """
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    workers = [
        WorkerProcess(process_env(settings, i), None, loglevel, ["--processes", "1"], True)
        for i in range(processes)
    ]
    failed = False
    try:
        for i, worker in enumerate(workers):
            worker.start()
            log.info("started worker process %d of %d (pid %s)", i + 1, processes, worker.pid)
        while not stopping and not failed:
            for i, worker in enumerate(workers):
                if worker.process is not None and (code := worker.process.poll()) is not None:
                    log.error(
                        "worker process %d of %d (pid %s) exited with code %s; stopping the "
                        "others (see its log lines above)",
                        i + 1,
                        processes,
                        worker.pid,
                        code,
                    )
                    failed = True
                    break
            else:
                time.sleep(0.2)
    finally:
        if stopping:
            log.info("stopping %d worker processes", processes)
        codes = _stop_all(workers)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    unclean = {w.pid: c for w, c in zip(workers, codes, strict=True) if c not in (0, None)}
    if unclean and not failed:
        log.error("worker processes did not stop cleanly (pid: exit code): %s", unclean)
    return 1 if failed or unclean else 0


def _stop_all(workers: list[WorkerProcess]) -> list[int | None]:
    """SIGTERM every worker still running, all at once; SIGKILL those still running after
    ``STOP_SECONDS``; their exit codes."""
    for worker in workers:
        if worker.running and worker.process is not None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        if worker.process is None:
            continue
        try:
            worker.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error(
                "worker process (pid %s) did not stop in %.0fs: killed", worker.pid, STOP_SECONDS
            )
            worker.process.kill()
            worker.process.wait(10)
    return [None if w.process is None else w.process.returncode for w in workers]
