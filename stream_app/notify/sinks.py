"""What takes an alert (a :class:`Sink`: a webhook, a command) and why it did not
(:class:`DeliveryError`)."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from schemas.events import DriftAlert


class DeliveryError(Exception):
    """A sink did not take an alert. ``retry``: a later attempt may succeed (a 5xx answer, a
    timeout, a refused connection, a command's non-zero exit); otherwise the target refused
    it for good (a 4xx answer, no such model version) and it is dead-lettered at once."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class Sink(Protocol):
    """One target of ``driftstream notify``.

    ``name`` is for people (``webhook https://hooks.example/…``); ``key`` is short and stable
    across restarts for the same target (it is stored in the consumer group's commit metadata
    to remember which sinks took an alert). A sink's constructor raises ``ValueError`` with a
    clear message for a target that cannot work (a bad URL, a missing command).
    """

    name: str
    key: str
    timeout: float
    """The longest one attempt takes, in seconds."""

    def deliver(self, alert: DriftAlert, payload: bytes) -> None:
        """Hand over one alert (``payload``: its JSON with a ``text`` line); raise
        :class:`DeliveryError` if the target did not take it."""
        ...

    def close(self) -> None:
        """Release what the sink holds (connections, clients)."""
        ...


RETRYABLE_STATUS = frozenset({408, 425, 429})
"""HTTP answers below 500 that mean "later", not "never"."""

SHOWN_BODY = 200
"""Characters of a refusing answer's body, or of a command's stderr, that a reason keeps."""


def sink_key(kind: str, target: str) -> str:
    """A short stable id of a target: ``kind`` (one letter) and a hash of ``target``."""
    return kind + hashlib.sha256(target.encode()).hexdigest()[:8]


class WebhookSink:
    """POSTs the payload to ``url`` with ``Idempotency-Key: <alert_id>``.

    A 2xx answer delivers; 5xx, 408, 425, 429, timeouts and failed connections are tried
    again; any other answer is a refusal. ``name`` shows the URL without its path, which in
    a Slack webhook is the secret.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not a webhook URL (http:// or https://, with a host): {url!r}")
        try:
            parts.port  # noqa: B018 (a bad port raises here, not at the first alert)
        except ValueError as exc:
            raise ValueError(f"not a webhook URL: {url!r}: {exc}") from None
        self.url = url
        self.timeout = timeout
        shown = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self.name = f"webhook {shown}/…" if parts.path.strip("/") else f"webhook {shown}"
        self.key = sink_key("w", url)

    def deliver(self, alert: DriftAlert, payload: bytes) -> None:
        request = urllib.request.Request(
            self.url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": alert.alert_id,
                "User-Agent": "driftstream-notify",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            body = exc.read(SHOWN_BODY).decode(errors="replace").strip()
            reason = f"HTTP {exc.code} {exc.reason}" + (f": {body}" if body else "")
            retry = exc.code >= 500 or exc.code in RETRYABLE_STATUS
            raise DeliveryError(reason, retry=retry) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryError(f"no answer: {why}", retry=True) from None

    def close(self) -> None:
        pass


class CommandSink:
    """Runs ``command`` (split like a shell would, not run by one) with the payload on stdin
    and ``DRIFTSTREAM_ALERT_ID``, ``DRIFTSTREAM_MODEL_ID``, ``DRIFTSTREAM_MODEL_VERSION`` and
    ``DRIFTSTREAM_INCIDENT_ID`` in its environment. Exit 0 delivers; a non-zero exit or
    running past ``timeout`` seconds is tried again later."""

    def __init__(self, command: str, timeout: float = 300.0) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ValueError(f"cannot split --exec {command!r}: {exc}") from None
        if not argv:
            raise ValueError("--exec needs a command")
        if shutil.which(argv[0]) is None:
            raise ValueError(f"--exec {command!r}: {argv[0]!r} is not an executable found on PATH")
        self.argv = argv
        self.timeout = timeout
        self.name = f"exec {command}"
        self.key = sink_key("x", command)

    def deliver(self, alert: DriftAlert, payload: bytes) -> None:
        env = {
            **os.environ,
            "DRIFTSTREAM_ALERT_ID": alert.alert_id,
            "DRIFTSTREAM_MODEL_ID": alert.model_id,
            "DRIFTSTREAM_MODEL_VERSION": alert.model_version,
            "DRIFTSTREAM_INCIDENT_ID": alert.incident_id or alert.alert_id,
        }
        try:
            done = subprocess.run(
                self.argv, input=payload, capture_output=True, timeout=self.timeout, env=env
            )
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"still running after {self.timeout:g} s", retry=True) from None
        except OSError as exc:
            raise DeliveryError(f"cannot run: {exc}", retry=True) from None
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace").strip()[-SHOWN_BODY:]
            raise DeliveryError(
                f"exit {done.returncode}" + (f": {stderr}" if stderr else ""), retry=True
            )

    def close(self) -> None:
        pass
