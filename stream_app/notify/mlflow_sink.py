"""The MLflow sink: an alert tags the registered model version it is about.

The version is found from the alert: the registered model is named ``model_id``, and
``model_version`` is a version number (``"3"``, or ``"v3"``/``"V3"`` as model servers often
write it) or else an alias of that model (``"champion"``, looked up at each alert, so it follows
the alias as it moves). MLflow reserves alias names like ``v3`` for versions, so the rule is
never ambiguous:

>>> version_number("3"), version_number("v3"), version_number("champion")
('3', '3', None)

The tags set, the status last: ``driftstream.last_alert`` (``alert_id``),
``driftstream.incident`` (``incident_id``, or ``alert_id`` for an alert that opens none),
``driftstream.last_signal`` (``signal``) and ``driftstream.status`` (``drift`` after a critical
alert, ``warning`` after a warning).

MLflow's client tries a failed request again by itself for minutes; ``driftstream notify`` has
its own backoff, so the sink keeps one attempt short (``CLIENT_LIMITS``, unless the environment
sets them). It needs the ``mlflow`` extra: ``pip install 'driftstream[mlflow]'``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import TYPE_CHECKING

from schemas.events import DriftAlert
from stream_app.notify.sinks import RETRYABLE_STATUS, SHOWN_BODY, DeliveryError, sink_key

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

NEEDS_EXTRA = "--mlflow needs the mlflow extra: pip install 'driftstream[mlflow]'"

CLIENT_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
}
"""MLflow's HTTP settings for one short attempt: two tries of at most 5 s each, whatever
``Retry-After`` a server asks for."""
ATTEMPT_SECONDS = 100.0
"""The longest one delivery takes at those limits: about 9 requests (a version lookup per tag),
each two tries of 5 s and a 1 s backoff."""

DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
"""The database schemes of MLflow's SQL stores (with an optional ``+driver``)."""

NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
"""MLflow's answers when the registered model, its version or its alias is not there (a missing
alias, like a name that cannot be one, is an invalid parameter to it)."""

_VERSION = re.compile(r"[vV]?([0-9]+)")


def version_number(model_version: str) -> str | None:
    """The MLflow version ``model_version`` names (``"3"`` or ``"v3"``), None for an alias."""
    match = _VERSION.fullmatch(model_version)
    return str(int(match[1])) if match else None


def tags(alert: DriftAlert) -> dict[str, str]:
    """The model version's tags after ``alert``, in the order they are set."""
    return {
        "driftstream.last_alert": alert.alert_id,
        "driftstream.incident": alert.incident_id or alert.alert_id,
        "driftstream.last_signal": alert.signal,
        "driftstream.status": "drift" if alert.severity == "critical" else "warning",
    }


def _shown(tracking_uri: str) -> str:
    """The URI as ``name`` and messages show it: without a login; ValueError for a URI that
    MLflow cannot track to."""
    parts = urllib.parse.urlsplit(tracking_uri)
    login, _, host = parts.netloc.rpartition("@")
    shown = parts._replace(netloc=host).geturl() if login else tracking_uri
    try:
        parts.port  # noqa: B018 (a bad port raises here, not at the first alert)
    except ValueError as exc:
        raise ValueError(f"not an MLflow tracking URI: {shown!r}: {exc}") from None
    scheme = parts.scheme.split("+")[0]
    if (
        (scheme in ("http", "https") and parts.hostname)
        or (scheme == "file" and parts.path)
        or scheme in DATABASES
    ):
        return shown
    raise ValueError(
        f"not an MLflow tracking URI (http(s)://host[:port], file:///path or a database such as"
        f" sqlite:////path/mlflow.db): {shown!r}"
    )


def _shortened(message: str) -> str:
    """``message`` on one line, its middle cut to keep it to about ``SHOWN_BODY`` characters:
    MLflow's start says which request failed, its end why (``Connection refused``)."""
    line = " ".join(message.split())
    half = SHOWN_BODY // 2
    return line if len(line) <= SHOWN_BODY else f"{line[:half]} … {line[-half:]}"


def _failure(exc: MlflowException, alert: DriftAlert) -> DeliveryError:
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS

    message = _shortened(exc.message)
    if exc.error_code in NOT_FOUND:
        return DeliveryError(
            f"no MLflow model version {alert.model_id} {alert.model_version!r} (a registered"
            f" model's version number, v<number> or alias): {message}",
            retry=False,
        )
    status = ERROR_CODE_TO_HTTP_STATUS.get(exc.error_code, 500)  # no answer: 500
    retry = status >= 500 or status in RETRYABLE_STATUS
    return DeliveryError(f"MLflow {exc.error_code}: {message}", retry=retry)


class MlflowSink:
    """Tags the model version an alert is about in the model registry at ``tracking_uri``.

    Refused for good: no such registered model, version or alias, and MLflow's other 4xx
    answers (but 408, 425, 429); tried again: no answer, a timeout, a 5xx.
    """

    def __init__(self, tracking_uri: str) -> None:
        shown = _shown(tracking_uri)
        try:
            from mlflow import MlflowClient
            from mlflow.exceptions import MlflowException
        except ImportError:
            raise ValueError(NEEDS_EXTRA) from None
        for variable, value in CLIENT_LIMITS.items():
            os.environ.setdefault(variable, value)
        try:  # a database store is opened (created, migrated) here
            self._client: MlflowClient = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        except (MlflowException, ImportError, OSError) as exc:  # a file store, no DB driver
            raise ValueError(f"--mlflow {shown}: {exc}") from None
        self.name = f"mlflow {shown}"
        self.key = sink_key("m", tracking_uri)
        self.timeout = ATTEMPT_SECONDS

    def deliver(self, alert: DriftAlert, payload: bytes) -> None:
        from mlflow.exceptions import MlflowException

        try:
            version = self._version(alert.model_id, alert.model_version)
            for tag, value in tags(alert).items():
                self._client.set_model_version_tag(alert.model_id, version, tag, value)
        except MlflowException as exc:
            raise _failure(exc, alert) from None

    def _version(self, model: str, model_version: str) -> str:
        number = version_number(model_version)
        if number is not None:
            return number
        found: str = self._client.get_model_version_by_alias(model, model_version).version
        return found

    def close(self) -> None:
        pass
