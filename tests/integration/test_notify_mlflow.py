"""The MLflow sink against a real ``mlflow server`` (the session's ``mlflow_server``)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from mlflow import MlflowClient

from schemas.events import DriftAlert, WindowStats
from stream_app.notify.mlflow_sink import NEEDS_EXTRA, MlflowSink
from stream_app.notify.sinks import DeliveryError
from stream_app.settings import Settings
from stream_app.topics import Topics
from tests.integration.test_notify import dead_letters, drift_alert, publish, run_notify
from tests.mlflow_server import free_port

MODEL = "fraud"
DEAD_SERVER_BOUND = 20.0
"""Seconds one attempt against a server that is not there may take (a bound, not a target)."""


def alert(
    alert_id: str,
    model_version: str,
    severity: Literal["warning", "critical"] = "critical",
    incident_id: str | None = None,
    signal: str = "error_rate",
) -> DriftAlert:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return DriftAlert(
        alert_id=alert_id,
        incident_id=incident_id,
        model_id=MODEL,
        model_version=model_version,
        signal=signal,
        detector="adwin",
        kind="concept",
        severity=severity,
        detected_at=now,
        event_time=now,
        before=WindowStats(mean=0.1, n=100),
        after=WindowStats(mean=0.4, n=50),
    )


@pytest.fixture(scope="module")
def registry(mlflow_server: str) -> MlflowClient:
    """``fraud`` with versions 1 and 2, and the alias ``champion`` on version 2."""
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    client.create_registered_model(MODEL)
    for _ in range(2):
        # the server takes a local source only inside a run's artifacts
        run = client.create_run("0")
        source = f"{run.info.artifact_uri}/model"
        client.create_model_version(MODEL, source=source, run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "2")
    return client


def driftstream_tags(client: MlflowClient, version: str) -> dict[str, str]:
    tags = client.get_model_version(MODEL, version).tags
    return {key: value for key, value in tags.items() if key.startswith("driftstream.")}


def test_alerts_tag_the_version_they_name(registry: MlflowClient, mlflow_server: str) -> None:
    sink = MlflowSink(mlflow_server)
    sink.deliver(alert("a1", "1"), b"")
    assert driftstream_tags(registry, "1") == {
        "driftstream.status": "drift",
        "driftstream.last_alert": "a1",
        "driftstream.incident": "a1",
        "driftstream.last_signal": "error_rate",
    }
    sink.deliver(alert("a2", "1", "warning", incident_id="a1", signal="feature:amount"), b"")
    assert driftstream_tags(registry, "1") == {
        "driftstream.status": "warning",
        "driftstream.last_alert": "a2",
        "driftstream.incident": "a1",
        "driftstream.last_signal": "feature:amount",
    }
    assert driftstream_tags(registry, "2") == {}

    sink.deliver(alert("a3", "v2"), b"")
    assert driftstream_tags(registry, "2")["driftstream.last_alert"] == "a3"
    assert driftstream_tags(registry, "2")["driftstream.status"] == "drift"
    sink.deliver(alert("a4", "champion", "warning"), b"")
    assert driftstream_tags(registry, "2") == {
        "driftstream.status": "warning",
        "driftstream.last_alert": "a4",
        "driftstream.incident": "a4",
        "driftstream.last_signal": "error_rate",
    }
    assert driftstream_tags(registry, "1")["driftstream.last_alert"] == "a2"
    sink.close()


@pytest.mark.parametrize("model_version", ["7", "V7", "challenger", "1.2.0"])
def test_a_version_that_matches_nothing_is_refused(
    registry: MlflowClient, mlflow_server: str, model_version: str
) -> None:
    sink = MlflowSink(mlflow_server)
    with pytest.raises(DeliveryError) as refused:
        sink.deliver(alert("a5", model_version), b"")
    assert refused.value.retry is False
    assert f"no MLflow model version {MODEL} {model_version!r}" in refused.value.reason


def test_a_model_that_is_not_registered_is_refused(
    registry: MlflowClient, mlflow_server: str
) -> None:
    unknown = alert("a6", "1").model_copy(update={"model_id": "churn"})
    with pytest.raises(DeliveryError) as refused:
        MlflowSink(mlflow_server).deliver(unknown, b"")
    assert refused.value.retry is False
    assert "no MLflow model version churn '1'" in refused.value.reason


def test_a_server_that_is_not_there_is_tried_again_later_and_soon_given_up() -> None:
    sink = MlflowSink(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failed:
        sink.deliver(alert("a7", "champion"), b"")
    assert time.monotonic() - started < DEAD_SERVER_BOUND
    assert failed.value.retry is True
    assert "Connection refused" in failed.value.reason


def test_name_and_key(tmp_path: Path) -> None:
    sink = MlflowSink("https://ops:s3cret@mlflow.example:5000")
    assert sink.name == "mlflow https://mlflow.example:5000"
    assert sink.key == MlflowSink("https://ops:s3cret@mlflow.example:5000").key
    assert sink.key != MlflowSink("https://mlflow.example:5000").key
    database = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert MlflowSink(database).name == f"mlflow {database}"


@pytest.mark.parametrize(
    "uri", ["mlflow.example:5000", "/tmp/mlruns", "ftp://host/x", "http://", "http://host:99999"]
)
def test_a_uri_mlflow_cannot_track_to_is_a_clear_error(uri: str) -> None:
    with pytest.raises(ValueError, match="not an MLflow tracking URI"):
        MlflowSink(uri)


def test_a_store_mlflow_cannot_open_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    with pytest.raises(ValueError, match=r"--mlflow sqlite:////.*/file/mlflow\.db: .*File exists"):
        MlflowSink(f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}")


def test_without_the_extra_the_sink_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an absent package imports as
    with pytest.raises(ValueError, match="pip install 'driftstream\\[mlflow\\]'") as missing:
        MlflowSink("http://127.0.0.1:5000")
    assert str(missing.value) == NEEDS_EXTRA


def test_notify_tags_the_alerted_version_and_dead_letters_an_unknown_one(
    registry: MlflowClient, mlflow_server: str, settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    first = drift_alert(1, model_id=MODEL, model_version="1", alert_id="cli-1")
    follow_up = drift_alert(
        2, model_id=MODEL, model_version="1", alert_id="cli-2", incident_id="cli-1"
    )
    unknown = drift_alert(3, model_id=MODEL, model_version="v9", alert_id="cli-3")
    publish(settings, topics, [first, follow_up, unknown])

    output = run_notify(settings, tmp_path / "notify.log", "--mlflow", mlflow_server)

    assert driftstream_tags(registry, "1") == {
        "driftstream.status": "drift",
        "driftstream.last_alert": "cli-2",
        "driftstream.incident": "cli-1",
        "driftstream.last_signal": "error_rate",
    }
    assert "3 read: 2 delivered, 0 retried, 1 failed" in output
    (letter,) = dead_letters(settings, topics, expected=1)
    assert "refused: no MLflow model version fraud 'v9'" in letter["reason"]
    assert letter["sink"] == f"mlflow {mlflow_server}"
