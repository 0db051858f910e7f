"""Settings come from DRIFTSTREAM_* variables; secrets never print."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from detectors.config import DetectorConfig
from detectors.signals import Signal
from stream_app.cli import app
from stream_app.runtimes.kafka.clients import ClientErrors, consumer_config
from stream_app.settings import Settings
from stream_app.worker_process import process_env


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__BOOTSTRAP_SERVERS", "a:1,b:2")
    monkeypatch.setenv("DRIFTSTREAM_TOPICS__PARTITIONS", "12")
    monkeypatch.setenv("DRIFTSTREAM_JOIN__TTL_SECONDS", "60")
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "a:1,b:2"
    assert settings.kafka.first_address() == ("a", 1)
    assert settings.topics.partitions == 12
    assert settings.join.ttl_seconds == 60


def test_sasl_settings_reach_the_client_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("DRIFTSTREAM_KAFKA__SASL_PASSWORD", "s3cret-value")
    monkeypatch.setenv("DRIFTSTREAM_REDIS__PASSWORD", "redis-s3cret")
    settings = Settings()
    config = settings.kafka.client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == "s3cret-value"
    assert settings.redis.client_kwargs()["password"] == "redis-s3cret"
    shown = repr(settings) + str(settings.model_dump())
    assert "s3cret-value" not in shown
    assert "redis-s3cret" not in shown


@pytest.mark.parametrize("variable", ["INSTANCE_ID", "TRANSACTIONAL_ID"])  # and its old name
def test_a_named_worker_is_a_static_member_with_its_own_transactional_id(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(f"DRIFTSTREAM_WORKER__{variable}", "pod-3")
    settings = Settings()
    assert settings.worker.instance_id == "pod-3"
    config = consumer_config(settings, "group", ClientErrors())
    assert config["group.instance.id"] == "pod-3"
    monkeypatch.delenv(f"DRIFTSTREAM_WORKER__{variable}")
    assert "group.instance.id" not in consumer_config(Settings(), "group", ClientErrors())


@pytest.mark.parametrize("variable", ["INSTANCE_ID", "TRANSACTIONAL_ID"])
def test_each_worker_process_has_an_instance_id_of_its_own(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """``driftstream worker --processes 2`` under a name: each process is ``<name>-<i>``,
    whichever variable named it (a child inherits the parent's environment too)."""
    monkeypatch.setenv(f"DRIFTSTREAM_WORKER__{variable}", "pod-3")
    for index in (0, 1):
        with monkeypatch.context() as child:
            for name, value in process_env(Settings(), index).items():
                child.setenv(name, value)
            assert Settings().worker.instance_id == f"pod-3-{index}"


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTSTREAM_TOPICS__PARTITIONS", "0")
    with pytest.raises(ValueError, match="partitions"):
        Settings()


def test_detectors_are_configurable_per_model_and_per_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTSTREAM_DETECTORS__SIGNAL_DETECTORS", '{"feature:zip*": []}')
    monkeypatch.setenv(
        "DRIFTSTREAM_DETECTORS__MODELS",
        '{"fraud": {"concept_detectors": [{"name": "ddm"}], "alert_cooldown_events": 5}}',
    )
    config = DetectorConfig.from_settings(Settings().detectors)
    fraud, other = config.for_model("fraud"), config.for_model("churn")
    assert [spec.name for spec in fraud.concept_detectors] == ["ddm"]
    assert fraud.alert_cooldown_events == 5
    assert [spec.name for spec in other.concept_detectors] == ["adwin", "page_hinkley"]
    zip_feature = Signal("feature:zip3", "data", binary=False)
    assert fraud.detectors_for(zip_feature) == other.detectors_for(zip_feature) == ()
    assert [s.name for s in other.detectors_for(Signal("feature:age", "data", binary=False))] == [
        "adwin"
    ]


@pytest.mark.parametrize("command", [["state"], ["alerts"], ["worker"], ["services", "status"]])
def test_an_invalid_setting_is_one_error_line_naming_the_variable_not_its_value(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("DRIFTSTREAM_REDIS__URL", "redis://:pw-s3cret@127.0.0.1:6379/0")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: invalid setting: DRIFTSTREAM_REDIS__URL: ")
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output
