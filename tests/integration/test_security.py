"""The pipeline on a Kafka that requires SASL/SCRAM and a Redis that requires an ACL user.

These services are the module's own (free ports, own state folder). With the right credentials
the simulator, the worker and the CLI work; with a wrong one each exits within seconds with a
one-line error naming what refused it; a worker whose login is refused later stops; and no
secret shows in a log, an output, a process's command line or a world-readable file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from stream_app.local.services.process import wait_until
from stream_app.preflight import PreflightError, check_redis, redis_client
from stream_app.settings import Settings, TopicSettings
from stream_app.topics import ensure_topics
from stream_app.worker_process import WorkerProcess
from tests.conftest import RUN_ID
from tests.pipeline import live_view, worker_ready
from tests.secured_services import KAFKA_USER, client_env, passwords, running_secured_services

COMMAND_SECONDS = 30.0
"""A command facing refused credentials must have exited well within this."""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with running_secured_services(tmp_path_factory.mktemp("secured-services")) as settings:
        yield settings


@pytest.fixture
def secured_test(secured: Settings, request: pytest.FixtureRequest) -> Settings:
    """The secured services with topics of this test's own (Redis keys: the ACL's prefix)."""
    name = f"s{RUN_ID}-{request.node.name[-24:].strip('[]')}"
    topics = TopicSettings(prefix=f"{name}.", partitions=2)
    return secured.model_copy(update={"topics": topics})


def driftstream(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    """Run the CLI with ``env``; return its exit code, its output (stdout + stderr), seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "stream_app", *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def with_password(env: dict[str, str], which: str, password: str) -> dict[str, str]:
    field = "KAFKA__SASL_PASSWORD" if which == "kafka" else "REDIS__PASSWORD"
    return {**env, f"DRIFTSTREAM_{field}": password}


def set_kafka_password(settings: Settings, password: str) -> None:
    """Change the SCRAM password of our user on the secured broker (logged in as that user)."""
    admin = AdminClient(settings.kafka.client_config())
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    change = UserScramCredentialUpsertion(KAFKA_USER, info, password.encode())
    for future in admin.alter_user_scram_credentials([change]).values():
        future.result()


def test_pipeline_runs_with_credentials_and_shows_no_secret(
    secured_test: Settings, tmp_path: Path
) -> None:
    settings = secured_test
    env = client_env(settings)
    worker_log = tmp_path / "worker.log"
    worker_env = {**env, "DRIFTSTREAM_WORKER__DATA_DIR": str(tmp_path / "data")}
    with WorkerProcess(worker_env, worker_log, loglevel="debug") as worker:  # logs it all
        code, simulated, _ = driftstream(env, "simulate", "-m", "secure=stable", "--events", "300")
        assert code == 0, simulated

        def counted() -> bool:
            assert worker.running, worker.log_tail()
            return int(live_view(settings).get("secure", {}).get("predictions", 0)) >= 300

        assert wait_until(counted, 120, interval=0.5), worker.log_tail()
        code, state, _ = driftstream(env, "state", "--json")
        assert code == 0, state
        assert '"predictions": "300"' in state
        code, alerts, _ = driftstream(env, "alerts", "--idle-seconds", "2")
        assert code == 0, alerts

    home = settings.services.state_dir
    for config in (home / "kafka" / "server.properties", home / "redis" / "redis.conf"):
        assert config.stat().st_mode & 0o777 == 0o600
    outputs = [simulated, state, alerts, worker_log.read_text(errors="replace")]
    outputs += [log.read_text(errors="replace") for log in home.glob("*.log")]
    command_lines = [p.read_bytes().decode(errors="replace") for p in _command_lines()]
    for secret in passwords(settings):
        assert not any(secret in text for text in outputs)
        assert not any(secret in line for line in command_lines)


def _command_lines() -> Iterator[Path]:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and (proc / "cmdline").exists():
            yield proc / "cmdline"


def test_redis_user_is_confined_to_its_key_prefix(secured: Settings) -> None:
    with redis_client(secured.redis) as client:
        client.set(f"{secured.redis.key_prefix}probe", "1")
        client.delete(f"{secured.redis.key_prefix}probe")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("elsewhere:probe", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()
    anonymous = secured.redis.model_copy(update={"username": None, "password": None})
    with pytest.raises(PreflightError, match="refused the credentials"):
        check_redis(anonymous)


@pytest.mark.parametrize(
    ("which", "command"),
    [
        ("kafka", ["worker"]),
        ("redis", ["worker"]),
        ("kafka", ["simulate", "--events", "10"]),
        ("kafka", ["alerts"]),
        ("redis", ["state"]),
    ],
)
def test_wrong_credentials_give_one_clear_line_quickly(
    secured_test: Settings, tmp_path: Path, which: str, command: list[str]
) -> None:
    wrong = f"wrong-{RUN_ID}-password"
    env = with_password(client_env(secured_test), which, wrong)
    env["DRIFTSTREAM_WORKER__DATA_DIR"] = str(tmp_path / "data")
    code, output, seconds = driftstream(env, *command)
    assert code == 1, output
    assert seconds < COMMAND_SECONDS
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    service = "Kafka" if which == "kafka" else "Redis"
    assert len(errors) == 1, output
    assert f"{service} at" in errors[0]
    assert "refused the credentials" in errors[0]
    assert "Traceback" not in output
    assert not any(secret in output for secret in [wrong, *passwords(secured_test)])


def test_worker_stops_when_kafka_refuses_its_login_later(
    secured_test: Settings, tmp_path: Path
) -> None:
    settings = secured_test
    ensure_topics(settings.kafka, settings.topics)
    env = {
        **client_env(settings),
        "DRIFTSTREAM_KAFKA__CREDENTIAL_CHECK_SECONDS": "1",
        "DRIFTSTREAM_WORKER__DATA_DIR": str(tmp_path / "data"),
    }
    log = tmp_path / "worker.log"
    rotated = f"rotated-{RUN_ID}"
    worker = WorkerProcess(env, log, loglevel="info").start()
    try:
        assert wait_until(lambda: worker_ready(log.read_text(errors="replace")), 90), (
            worker.log_tail()
        )
        set_kafka_password(settings, rotated)  # as an operator rotating it would
        try:
            assert wait_until(lambda: not worker.running, 60), worker.log_tail()
        finally:  # the other tests log in with the original password
            login = settings.kafka.model_copy(update={"sasl_password": SecretStr(rotated)})
            original = passwords(settings)[0]
            set_kafka_password(settings.model_copy(update={"kafka": login}), original)
    finally:
        worker.stop()
    assert worker.process is not None
    assert worker.process.returncode == 1
    assert "refused the credentials" in worker.log_tail(5)
