"""Stop a running worker when Kafka stops accepting its credentials, instead of retrying forever.

aiokafka reconnects after a refused login for as long as the worker runs, logging errors several
times a second (seen when the password is rotated or the user deleted while a worker runs). The
runtime repeats the preflight check (:func:`stream_app.preflight.check_kafka`) every
``kafka.credential_check_seconds``; on an authentication failure it logs the one-line reason and
stops the worker the way Ctrl-C does, and :meth:`CredentialWatch.raise_failure` then hands the
reason to the command line, which exits non-zero with it. A broker that is merely unreachable is
left to the clients' own retries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from stream_app.preflight import PreflightError, check_kafka
from stream_app.settings import KafkaSettings

log = logging.getLogger(__name__)


class CredentialWatch:
    """Re-checks the Kafka login of a running worker; remembers why it stopped the worker."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.failure: PreflightError | None = None

    async def check(self) -> None:
        if self.failure is not None:
            return
        try:
            await asyncio.to_thread(check_kafka, self.kafka)
        except PreflightError as exc:
            if exc.problem == "authentication":
                self.failure = exc
                log.error("%s; stopping the worker", exc)
                os.kill(os.getpid(), signal.SIGTERM)

    def raise_failure(self) -> None:
        """Raise the refusal that stopped the worker, if any."""
        if self.failure is not None:
            raise self.failure
