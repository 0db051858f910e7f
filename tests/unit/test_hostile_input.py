"""Hostile input is rejected at the edge with a clean reason; secrets never print."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from pipeline.dead_letters import MAX_KEY_BYTES, MAX_VALUE_BYTES, dead_letter_record
from pipeline.edge import parse_input
from pipeline.effects import Effects, InputRecord
from schemas.errors import InvalidEvent
from stream_app.cli import app
from stream_app.live_state.keys import LiveStateKeys
from stream_app.processors import join_processor
from stream_app.settings import Settings
from tests.hostile import HostileGenerator

SECRETS = {
    "DRIFTSTREAM_KAFKA__SASL_PASSWORD": "kafka-s3cret-in-env",
    "DRIFTSTREAM_REDIS__PASSWORD": "redis-s3cret-in-env",
}


def test_every_hostile_message_is_rejected_at_the_edge_with_a_one_line_reason() -> None:
    rejected: Counter[str] = Counter()
    for message in HostileGenerator(seed=3, marker="mark").messages(5_000):
        with pytest.raises(InvalidEvent) as caught:
            _edge(message.is_prediction, message.key, message.value)
        assert caught.value.reason.isprintable()
        assert len(caught.value.reason) < 400
        rejected[message.category] += 1
    assert sum(rejected.values()) == 5_000
    assert len(rejected) == 16  # every category came up


def _edge(is_prediction: bool, key: bytes | None, value: bytes | None) -> None:
    """What the worker does with an input message before anything else."""
    record = InputRecord("predictions" if is_prediction else "labels", 0, 0, key, value)
    parse_input(record, is_prediction=is_prediction, now=datetime.now(UTC), max_future_seconds=300)


@pytest.mark.parametrize("name", ["*", "..", "a\r\nb", "{x}", "a:b", "a/b", "x" * 129, "é"])
def test_hostile_model_ids_never_reach_a_redis_key(name: str) -> None:
    fields = {"request_id": "r", "model_id": name, "timestamp": "2026-01-01T00:00:00Z"}
    body = json.dumps({**fields, "label": 1})
    with pytest.raises(InvalidEvent, match=r"LabelEvent\.model_id"):
        _edge(False, b"r", body.encode())


def test_allowed_odd_names_stay_under_the_prefix() -> None:
    keys = LiveStateKeys("p:")
    for model_id in ["a.b-c_d", "0..9"]:
        assert keys.model(model_id).startswith("p:model:")
        assert keys.signals(model_id).startswith("p:model:")
        assert keys.model_alerts(model_id).startswith("p:alerts:")


def _commands(group: TyperGroup, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            found += _commands(command, [*path, name])
        else:
            found.append([*path, name])
    return found


def test_help_of_every_command_shows_no_secret() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    commands = _commands(root, [])
    assert len(commands) > 10
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], env=SECRETS)
        assert result.exit_code == 0, (command, result.output)
        assert not any(secret in result.output for secret in SECRETS.values()), command


def test_settings_errors_do_not_echo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTSTREAM_REDIS__URL", "redis://user:url-s3cret@127.0.0.1:6379/0")
    with pytest.raises(ValueError, match="not in the URL") as caught:
        Settings()
    assert "url-s3cret" not in str(caught.value)


def test_dead_letters_keep_small_messages_whole_and_cut_huge_ones() -> None:
    small = dead_letter_record(b"k", b"v" * 100, "R.x: bad", "t/0/1")
    assert (small.key, small.value) == (b"k", b"v" * 100)
    expected = {"driftstream-reason": b"R.x: bad", "driftstream-source": b"t/0/1"}
    assert dict(small.headers) == expected
    huge = dead_letter_record(b"k" * 20_000, b"v" * 1_040_000, "R: too big", "t/0/2")
    assert huge.key == b"k" * MAX_KEY_BYTES
    assert huge.value == b"v" * MAX_VALUE_BYTES
    headers = dict(huge.headers)
    assert headers["driftstream-truncated"] == b"key 20000 bytes, value 1040000 bytes"
    assert headers["driftstream-source"] == b"t/0/2"
    assert dead_letter_record(None, None, "R: none", "t/0/3").value is None


def test_what_a_runtime_logs_of_a_dead_letter_is_what_its_headers_say() -> None:
    """A runtime logs each dead letter from ``Effects.dead_letters`` (typed), never by decoding
    the record's headers again: both must name the same source and reason."""
    join = join_processor(Settings(), "predictions")
    effects = Effects()
    for offset, value in enumerate([b"{not json", b'{"request_id": "r1"}', b"\xff"]):
        join.process(InputRecord("predictions", 2, offset, b"k", value), effects, datetime.now(UTC))
    letters = [output for output in effects.outputs if output.stream == "deadletter"]
    told = [
        (dict(o.headers or [])["driftstream-source"], dict(o.headers or [])["driftstream-reason"])
        for o in letters
    ]
    assert len(letters) == 3
    assert [(s.encode(), r.encode()) for s, r in effects.dead_letters] == told
