"""``driftstream replay FILE``: alerts and summary as text or JSON, bad lines, unreadable files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import stream_app.report_chart
from pipeline.backtest import Backtest
from producers.event_file import EventFileWriter, read_event_file
from producers.simulator import ModelTraffic, simulate
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert
from stream_app.alerts_feed import format_alert
from stream_app.cli.replay import BATCH_EVENTS, replay
from stream_app.report_chart import ModelSeries, write_report

app = typer.Typer()
app.command()(replay)

BAD_LINES = {
    3: b"{not json\n",
    5: b'{"kind": "label", "event": {"model_id": "fraud"}}\n',
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DriftAlert]]:
    """A seeded abrupt-drift stream in a file, and the alerts the core raises on it."""
    path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    writer = EventFileWriter(path)
    for event in simulate([ModelTraffic("fraud", "abrupt", 3000, seed=5)]):
        writer.send(event)
    writer.close()
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000)
    alerts = [alert for event in read_event_file(path) for alert in backtest.process(event)]
    assert any(alert.kind == "concept" for alert in alerts)
    return path, alerts


def run(*args: str) -> typer.testing.Result:
    return CliRunner().invoke(app, list(args))


def test_prints_each_alert_and_a_summary(recorded: tuple[Path, list[DriftAlert]]) -> None:
    path, alerts = recorded
    result = run(str(path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for alert in alerts:
        line = next(line for line in lines if alert.alert_id[:8] in line)
        assert format_alert(alert) in line  # model, kind, signal, detector, severity, means
    assert "replay summary" in result.stdout
    assert "3,000" in result.stdout  # the model's predictions
    assert f"{len(alerts)} alerts, 0 invalid lines skipped" in result.stdout


def test_json_has_the_alerts_and_the_counts(recorded: tuple[Path, list[DriftAlert]]) -> None:
    path, alerts = recorded
    result = run(str(path), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [DriftAlert.model_validate(alert) for alert in document["alerts"]] == alerts
    fraud = document["models"]["fraud"]
    assert (fraud["predictions"], fraud["alerts"], fraud["bank"]["outcomes"]) == (
        3000,
        len(alerts),
        fraud["joined"],
    )
    assert document["invalid_lines"] == 0


def test_bad_lines_are_reported_counted_and_skipped(
    recorded: tuple[Path, list[DriftAlert]], tmp_path: Path
) -> None:
    path, alerts = recorded
    lines = path.read_bytes().splitlines(keepends=True)
    for number, bad in sorted(BAD_LINES.items()):
        lines.insert(number - 1, bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines))

    result = run(str(broken))
    assert result.exit_code == 0, result.output
    assert f"{broken}:3: JSONDecodeError" in result.stderr
    assert f"{broken}:5: LabelEvent.request_id: Field required" in result.stderr
    assert f"{len(alerts)} alerts, 2 invalid lines skipped" in result.stdout

    document = json.loads(run(str(broken), "--json").stdout)
    assert document["invalid_lines"] == 2
    assert document["events"] == len(lines) - 2
    assert [alert["alert_id"] for alert in document["alerts"]] == [a.alert_id for a in alerts]
    with pytest.raises(InvalidEvent, match=f"{broken}:3: "):
        list(read_event_file(broken))


def test_detector_options_override_the_settings(recorded: tuple[Path, list[DriftAlert]]) -> None:
    path, _ = recorded
    result = run(str(path), "--json", "--concept-detectors", "adwin", "--data-detectors", "")
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.stdout)["alerts"]
    assert alerts
    assert {(alert["detector"], alert["kind"]) for alert in alerts} == {("adwin", "concept")}


def test_report_draws_the_replayed_model_with_its_alerts(
    recorded: tuple[Path, list[DriftAlert]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, alerts = recorded
    drawn: list[Sequence[ModelSeries]] = []

    def spy(models: Sequence[ModelSeries], out: Path, **options: Any) -> Path:
        drawn.append(models)
        return write_report(models, out, **options)

    monkeypatch.setattr(stream_app.report_chart, "write_report", spy)
    out = tmp_path / "replay.png"
    result = run(str(path), "--json", "--report", str(out), "--report-every", "200")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alerts"]  # stdout stays one JSON document
    assert f"report: {out}" in " ".join(result.stderr.split())
    assert out.read_bytes().startswith(b"\x89PNG")
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000, history_every=200)
    events = list(read_event_file(path))
    for start in range(0, len(events), BATCH_EVENTS):  # the replay's batches
        backtest.process_many(events[start : start + BATCH_EVENTS])
    backtest.finish()
    assert drawn == [[ModelSeries("fraud", backtest.history["fraud"], alerts)]]
    assert (
        len(backtest.history["fraud"])
        == (backtest.banks["fraud"].predictions + backtest.banks["fraud"].outcomes) // 200
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["{tmp}/missing.jsonl"], "No such file"),
        (["{tmp}"], "Is a directory"),
        (["{file}", "--concept-detectors", "adwin,nope"], "unknown detector 'nope'"),
    ],
)
def test_unreadable_files_and_bad_options_exit_2(
    args: list[str], complaint: str, recorded: tuple[Path, list[DriftAlert]], tmp_path: Path
) -> None:
    path, _ = recorded
    result = CliRunner().invoke(
        app, [arg.format(file=path, tmp=tmp_path) for arg in args], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert complaint in " ".join(result.output.split())
