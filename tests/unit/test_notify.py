"""The pure parts of ``driftstream notify``: filters, payload, backoff and the retry loop."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.events import DriftAlert, WindowStats
from stream_app.notify.consumer import NotifyCounts, SinkCounts
from stream_app.notify.delivery import Backoff, deliver
from stream_app.notify.message import AlertFilter, payload
from stream_app.notify.sinks import CommandSink, DeliveryError, WebhookSink

AT = datetime(2026, 3, 1, tzinfo=UTC)
ALERT = DriftAlert(
    alert_id="a2",
    incident_id="a1",
    model_id="fraud",
    model_version="3",
    signal="error_rate",
    detector="adwin",
    kind="concept",
    severity="warning",
    detected_at=AT,
    event_time=AT,
    before=WindowStats(mean=0.1, n=900),
    after=WindowStats(mean=0.4, n=100),
)


class ScriptedSink:
    """A sink that fails as told, one ``DeliveryError`` (or None: delivered) per attempt."""

    def __init__(self, *failures: DeliveryError | None) -> None:
        self.failures = list(failures)
        self.attempts = 0

    name = "scripted"
    key = "s1"
    timeout = 1.0

    def deliver(self, alert: DriftAlert, payload: bytes) -> None:
        self.attempts += 1
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure

    def close(self) -> None:
        pass


def test_the_payload_is_the_alert_with_a_text_line() -> None:
    body = json.loads(payload(ALERT))
    assert DriftAlert.model_validate({k: v for k, v in body.items() if k != "text"}) == ALERT
    assert body["text"].startswith("driftstream: 2026-03-01 00:00:00 WARNING  fraud concept")


@pytest.mark.parametrize(
    ("alert_filter", "passes"),
    [
        (AlertFilter(), True),
        (AlertFilter(models=frozenset({"fraud", "churn"})), True),
        (AlertFilter(models=frozenset({"churn"})), False),
        (AlertFilter(kinds=frozenset({"data"})), False),
        (AlertFilter(min_severity="critical"), False),
        (AlertFilter(new_incidents_only=True), False),  # a follow-up of incident a1
    ],
)
def test_filters(alert_filter: AlertFilter, passes: bool) -> None:
    assert alert_filter.passes(ALERT) is passes


def test_the_first_alert_of_an_incident_and_an_alert_without_one_are_new() -> None:
    only_new = AlertFilter(new_incidents_only=True)
    assert only_new.passes(ALERT.model_copy(update={"incident_id": "a2"}))
    assert only_new.passes(ALERT.model_copy(update={"incident_id": None}))


def test_backoff_doubles_up_to_its_cap() -> None:
    assert list(Backoff(4, 0.5, 1.5).delays()) == [0.5, 1.0, 1.5]
    assert list(Backoff(1).delays()) == []


def test_retryable_failures_are_tried_again_until_delivered() -> None:
    sink = ScriptedSink(DeliveryError("HTTP 503", retry=True), DeliveryError("timeout", retry=True))
    waits: list[float] = []
    told: list[tuple[int, str]] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False  # not asked to stop

    def retrying(_sink: object, _alert: object, attempt: int, _wait: float, why: str) -> None:
        told.append((attempt, why))

    outcome = deliver(sink, ALERT, b"{}", Backoff(5, 1.0, 60.0), wait, retrying)
    assert (outcome.status, outcome.attempts, sink.attempts) == ("delivered", 3, 3)
    assert waits == [1.0, 2.0]
    assert told == [(1, "HTTP 503"), (2, "timeout")]


def test_a_refusal_is_not_retried_and_the_cap_ends_retries() -> None:
    def run(sink: ScriptedSink) -> tuple[str, int, str]:
        outcome = deliver(sink, ALERT, b"{}", Backoff(3, 0.0), lambda _s: False, _ignore)
        return outcome.status, outcome.attempts, outcome.reason

    assert run(ScriptedSink(DeliveryError("HTTP 404", retry=False))) == (
        "failed",
        1,
        "refused: HTTP 404",
    )
    always = ScriptedSink(*[DeliveryError("HTTP 503", retry=True)] * 9)
    assert run(always) == ("failed", 3, "HTTP 503 (after 3 attempts)")


def test_a_stop_while_waiting_ends_without_delivery() -> None:
    sink = ScriptedSink(DeliveryError("HTTP 503", retry=True))
    outcome = deliver(sink, ALERT, b"{}", Backoff(5), lambda _s: True, _ignore)
    assert (outcome.status, sink.attempts) == ("stopped", 1)


def _ignore(*_args: object) -> None:
    pass


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://hooks.slack.com/services/T0/B0/secret", "webhook https://hooks.slack.com/…"),
        ("http://127.0.0.1:8080", "webhook http://127.0.0.1:8080"),
        ("http://user:pw@example.com:81/x", "webhook http://example.com:81/…"),
    ],
)
def test_a_webhook_is_named_without_its_secret_path_or_login(url: str, name: str) -> None:
    assert WebhookSink(url).name == name


@pytest.mark.parametrize("url", ["hooks.example.com/x", "ftp://example.com/x", "http://:80/x"])
def test_a_bad_webhook_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(ValueError, match="not a webhook URL"):
        WebhookSink(url)


def test_sink_keys_are_stable_and_tell_targets_apart() -> None:
    assert WebhookSink("http://a/x").key == WebhookSink("http://a/x").key
    assert WebhookSink("http://a/x").key != WebhookSink("http://a/y").key
    assert CommandSink("true --a").key != CommandSink("true --b").key


def test_a_command_that_cannot_run_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'nope-cmd' is not an executable found on PATH"):
        CommandSink("nope-cmd --now")
    with pytest.raises(ValueError, match="cannot split"):
        CommandSink("retrain 'unclosed")


def test_the_summary_totals_the_sinks_and_names_each_when_several() -> None:
    counts = NotifyCounts(read=5, filtered=1, sinks={"a": SinkCounts(3, 1, 0), "b": SinkCounts(2)})
    assert counts.summary() == (
        "5 read: 5 delivered, 1 retried, 0 failed, 1 filtered out, 0 invalid;"
        " a: 3 delivered, 1 retried, 0 failed; b: 2 delivered, 0 retried, 0 failed"
    )
