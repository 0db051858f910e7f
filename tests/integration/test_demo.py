"""The README's first command: the demo runs end to end and judges its own result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stream_app.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_demo_alerts_on_the_drifting_models_only(services: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream_app", "demo", "--duration", "15", "--rate", "600"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "as expected" in output
    assert "ALERT" in output
    assert "fraud concept drift on error_rate" in output
    assert "churn data drift on feature:" in output
    assert "stable" in output
    assert "ALERT" not in "".join(line for line in output.splitlines() if " stable " in line)
