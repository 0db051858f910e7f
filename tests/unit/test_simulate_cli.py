"""``driftstream simulate --to-file``: the JSON-lines format, the truth file, option errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from producers.event_file import read_event_file
from schemas.events import LabelEvent, PredictionEvent
from stream_app.cli.simulate import simulate

app = typer.Typer()
app.command()(simulate)


def test_to_file_writes_json_lines_and_the_truth(tmp_path: Path) -> None:
    events_file, truth_file = tmp_path / "events.jsonl", tmp_path / "truth.json"
    args = ["-m", "a=abrupt", "-m", "b=stable", "--events", "200", "--seed", "3"]
    args += ["--drift-at", "50", "--to-file", str(events_file), "--truth", str(truth_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    lines = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"prediction", "label"}
    events = list(read_event_file(events_file))
    kinds = ["prediction" if isinstance(e, PredictionEvent) else "label" for e in events]
    assert kinds == [line["kind"] for line in lines]

    truths = {t["model_id"]: t for t in json.loads(truth_file.read_text())}
    assert truths["a"]["drift_start_index"] == 50
    assert truths["b"]["drift_start_index"] is None
    for model_id, truth in truths.items():
        mine = [e for e in events if e.model_id == model_id]
        assert truth["predictions"] == sum(isinstance(e, PredictionEvent) for e in mine) == 200
        labels = sum(isinstance(e, LabelEvent) for e in mine)
        assert truth["labels"] + truth["duplicate_labels"] == labels
    assert f"sent {len(events)}, delivered {len(events)}, failed 0" in result.output


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["-m", "a:abrupt"], "NAME=SCENARIO"),
        (["-m", "a=sideways"], "sideways"),
        (["-m", "a=stable", "-m", "a=abrupt"], "unique"),
        (["--duration", "5"], "--rate"),
        (["--events", "10", "--drift-at", "10"], "outside"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], complaint: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*args, "--to-file", str(tmp_path / "unused.jsonl")])
    assert result.exit_code == 2
    assert complaint in result.output
