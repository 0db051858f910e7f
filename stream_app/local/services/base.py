"""What every local service shares: reuse what answers, start, wait until ready, stop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from stream_app.local.services.process import ManagedProcess, ServiceError, is_alive, wait_until
from stream_app.preflight import PreflightError
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
    def check(self) -> None:
        """Make a real request with the configured credentials; raise ``PreflightError`` if it
        fails."""

    def answers(self) -> bool:
        """Whether the service answers a real request (with our credentials) at its address."""
        try:
            self.check()
        except PreflightError:
            return False
        return True

    @abstractmethod
    def launch(self, say: Say) -> int:
        """Prepare (fetch, configure) and start the server process; return its pid."""

    def up(self, say: Say) -> str:
        """Start the service unless one already answers; return what was done.

        One that answers but refuses our credentials is an error, not something to start a
        second server next to.
        """
        try:
            self.check()
            return "ours, already running" if self.process.pid() else "external, reused"
        except PreflightError as exc:
            if exc.problem == "authentication":
                raise ServiceError(f"{exc} (already running with other credentials?)") from None
        pid = self.launch(say)
        refused: list[PreflightError] = []

        def settled() -> bool:
            try:
                self.check()
            except PreflightError as exc:
                if exc.problem == "authentication":
                    refused.append(exc)
                return bool(refused) or not is_alive(pid)
            return True

        ready = wait_until(settled, self.local.ready_timeout_seconds)
        if not ready or refused or not is_alive(pid):
            self.process.stop(pid=pid)
            why = (
                f"{refused[0]} (its data in {self.local.state_dir} was set up with other "
                "credentials?)"
                if refused
                else f"{self.name} did not answer on {self.address} within "
                f"{self.local.ready_timeout_seconds:.0f}s"
            )
            raise ServiceError(
                f"{why}; last lines of {self.process.log_file}:\n{self.process.log_tail()}"
            )
        return "started"

    def down(self) -> bool:
        """Stop our process (by pid file); False when none of ours was running."""
        return self.process.stop()
