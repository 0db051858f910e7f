"""bench.shapes: the worker on wide and many models (the run itself needs Kafka: it is a
benchmark, not a test); here what it asks of the worker and how it reports."""

from __future__ import annotations

import json

from bench.shapes import Outcome, Restore, Traffic, render
from bench.throughput import WorkerResult
from bench.traffic import Shape, generate
from detectors.config import DetectorConfig
from schemas.codec import decode
from schemas.events import PredictionEvent
from stream_app.settings import DetectorSettings


def test_a_wide_shape_has_its_width_and_the_worker_tracks_every_feature() -> None:
    traffic = Traffic("1,000 features", Shape(models=1, numeric_features=999), 10)
    prediction = decode(PredictionEvent, next(generate(traffic.shape, 1)).prediction)
    assert len(prediction.features) == 1000
    models = json.loads(traffic.env["DRIFTSTREAM_DETECTORS__MODELS"])
    config = DetectorConfig.from_settings(DetectorSettings(models=models))
    assert config.for_model("m0").max_feature_signals >= 1000


def test_thousands_of_narrow_models_need_no_setting_of_their_own() -> None:
    """Within the default limit, every feature is tracked without a per-model setting (those of
    5,000 models passed to the worker as one environment variable were over the OS's limit)."""
    traffic = Traffic("5,000 models", Shape(models=5000, numeric_features=9), 50_000)
    assert traffic.env == {}
    width = len(decode(PredictionEvent, next(generate(traffic.shape, 1)).prediction).features)
    assert (
        DetectorConfig.from_settings(DetectorSettings()).for_model("m0").max_feature_signals
        >= width
    )


def test_render_gives_a_row_per_shape_and_the_restore() -> None:
    traffic = Traffic("1,000 models", Shape(models=1000, numeric_features=9), 50_000)
    worker = WorkerResult("kafka", True, 1, 50_000, 40.0, None, 600e-6, 3)
    section = render(
        [Outcome(traffic, worker, Restore(5.25, 641_647, 33.5))], "python -m bench.shapes", "0"
    )
    assert section.startswith("## Shapes\n")
    assert "| 1,000 models | 1,000 | 10 | 50,000 | 1,250 | 600 | yes | 3 |" in section
    assert "restored 641,647 changelog records in 5.2 s (its log) and was ready 33.5 s" in section
