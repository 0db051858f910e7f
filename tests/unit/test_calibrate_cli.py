"""``driftstream calibrate REFERENCE --out FILE`` on a simulator recording, and using the file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from detectors.config import read_detector_file
from producers.event_file import EventFileWriter
from producers.simulator import ModelTraffic, simulate
from stream_app.cli import app


def record(path: Path, scenario: str, predictions: int, seed: int) -> Path:
    writer = EventFileWriter(path)
    for event in simulate([ModelTraffic("fraud", scenario, predictions, seed=seed)]):
        writer.send(event)
    writer.close()
    return path


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """A stable reference of 3,000 predictions calibrated for a high budget (fast)."""
    folder = tmp_path_factory.mktemp("calibrate")
    reference = record(folder / "reference.jsonl", "stable", 3000, seed=1)
    out = folder / "detectors.json"
    args = [str(reference), "--out", str(out), "--false-alarms-per-million", "1000"]
    result = CliRunner().invoke(app, ["calibrate", *args, "--max-values", "20000"])
    return out, result


def test_prints_each_signal_and_writes_the_detector_file(
    calibrated: tuple[Path, Result],
) -> None:
    out, result = calibrated
    assert result.exit_code == 0, result.output
    assert "detectors for 1000 false alarms per million values" in result.stdout
    document = read_detector_file(out)
    signals = document.models["fraud"]
    assert {"error_rate", "score", "feature:age", "estimated_accuracy"} <= set(signals)
    assert [spec.name for spec in signals["error_rate"].detectors] == ["adwin", "page_hinkley"]
    for name, signal in signals.items():
        assert name in result.stdout
        assert signal.false_alarms_per_million is not None
        assert signal.false_alarms_per_million <= 1000 * 1.01  # rounded toward fewer alarms
    assert document.false_alarms_per_million == 1000


def replayed_alerts(live: Path, *options: str) -> list[dict[str, Any]]:
    """The alerts of ``driftstream replay LIVE --json OPTIONS``, as its JSON has them."""
    result = CliRunner().invoke(app, ["replay", str(live), "--json", *options])
    assert result.exit_code == 0, result.output
    alerts: list[dict[str, Any]] = json.loads(result.stdout)["alerts"]
    return alerts


def first_concept_alert(alerts: list[dict[str, Any]]) -> datetime:
    return min(datetime.fromisoformat(a["event_time"]) for a in alerts if a["kind"] == "concept")


def test_replay_and_the_setting_use_the_file(
    calibrated: tuple[Path, Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = calibrated
    live = record(tmp_path / "abrupt.jsonl", "abrupt", 3000, seed=2)
    monkeypatch.delenv("DRIFTSTREAM_DETECTORS__FILE", raising=False)
    without_file = replayed_alerts(live)
    with_option = replayed_alerts(live, "--detectors", str(out))
    monkeypatch.setenv("DRIFTSTREAM_DETECTORS__FILE", str(out))
    with_setting = replayed_alerts(live)
    assert with_setting == with_option
    assert with_option != without_file, "the detector file changed no alert"
    # its budget, 1,000 false alarms per million values, is looser than the defaults': the
    # abrupt change is seen sooner
    assert first_concept_alert(with_option) < first_concept_alert(without_file)


def test_a_missing_detector_file_is_one_error_line(tmp_path: Path) -> None:
    live = record(tmp_path / "events.jsonl", "stable", 10, seed=3)
    missing = tmp_path / "nope.json"
    result = CliRunner().invoke(app, ["replay", str(live), "--detectors", str(missing)])
    assert result.exit_code == 2
    assert (
        result.output == f"error: --detectors: {missing}: cannot read: No such file or directory\n"
    )


def test_unreadable_or_too_short_references_are_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "detectors.json")
    missing = CliRunner().invoke(app, ["calibrate", str(tmp_path / "nope.jsonl"), "--out", out])
    assert missing.exit_code == 2
    assert missing.output.startswith("error: cannot read ")
    short = record(tmp_path / "short.jsonl", "stable", 100, seed=4)
    result = CliRunner().invoke(app, ["calibrate", str(short), "--out", out])
    assert result.exit_code == 2
    assert "no signal with detectors has 500 values" in result.output
    assert not Path(out).exists()
