"""What every local service shares: reuse what answers, start, wait until ready, stop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from stream_app.services.process import ManagedProcess, ServiceError, is_alive, wait_until
from stream_app.settings import LocalServicesSettings

Say = Callable[[str], None]


class LocalService(ABC):
    """A development server on ``host:port`` that ``driftstream services`` manages."""

    name: str
    host: str
    port: int
    local: LocalServicesSettings
    process: ManagedProcess

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @abstractmethod
    def answers(self) -> bool:
        """Whether the service answers a real request at its address."""

    @abstractmethod
    def launch(self, say: Say) -> int:
        """Prepare (fetch, configure) and start the server process; return its pid."""

    def up(self, say: Say) -> str:
        """Start the service unless one already answers; return what was done."""
        if self.answers():
            return "ours, already running" if self.process.pid() else "external, reused"
        pid = self.launch(say)
        ready = wait_until(
            lambda: self.answers() or not is_alive(pid), self.local.ready_timeout_seconds
        )
        if not ready or not is_alive(pid):
            self.process.stop(pid=pid)
            raise ServiceError(
                f"{self.name} did not answer on {self.address} within "
                f"{self.local.ready_timeout_seconds:.0f}s; last lines of "
                f"{self.process.log_file}:\n{self.process.log_tail()}"
            )
        return "started"

    def down(self) -> bool:
        """Stop our process (by pid file); False when none of ours was running."""
        return self.process.stop()
