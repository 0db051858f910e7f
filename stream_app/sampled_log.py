"""Log a flood of similar events as a few lines: the first at once, then one per interval.

A worker fed 100,000 bad messages would otherwise write 100,000 log lines (and spend its time
doing so); the counts that matter are in Redis and the metrics, and every message with its
reason is on the dead-letter topic.
"""

from __future__ import annotations

import logging
import time


class SampledLog:
    """``record(source, reason)`` logs at most one line per ``interval`` seconds (at ``level``),
    with how many events came since the last line."""

    def __init__(
        self, logger: logging.Logger, what: str, interval: float = 10.0, level: int = logging.INFO
    ) -> None:
        self.logger = logger
        self.what = what
        self.interval = interval
        self.level = level
        self.unreported = 0
        self.next_line_at = 0.0

    def record(self, source: str, reason: str) -> None:
        self.unreported += 1
        now = time.monotonic()
        if now < self.next_line_at:
            return
        more = "" if self.unreported == 1 else f" ({self.unreported - 1} more before it)"
        self.logger.log(self.level, "%s %s: %s%s", self.what, source, reason, more)
        self.unreported = 0
        self.next_line_at = now + self.interval
