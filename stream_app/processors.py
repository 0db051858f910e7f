"""The pipeline's processors built from the settings, in one place.

Both runtimes, ``driftstream replay`` and ``driftstream calibrate`` take their
:class:`~pipeline.join.JoinProcessor`, :class:`~pipeline.detect.DetectProcessor` and
:class:`~pipeline.backtest.Backtest` from here, so a setting (the join's TTL and limits, the
detectors, the event-time lateness) means the same everywhere. What differs between them is
what each runtime owns (its stores, whether it holds records) and is passed in by name.

>>> from stream_app.settings import Settings
>>> join = join_processor(Settings(), "predictions", recording=True)
>>> join.ttl_seconds == Settings().join.ttl_seconds, join.max_future_seconds
(True, inf)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from detectors.config import DetectorConfig
from pipeline.backtest import Backtest
from pipeline.detect import DetectProcessor
from pipeline.join import JoinProcessor, StoreFactory
from stream_app.settings import Settings


def detector_config(settings: Settings) -> DetectorConfig:
    """The detectors the settings choose (their lists, per-model fields and detector file)."""
    return DetectorConfig.from_settings(settings.detectors)


def join_processor(
    settings: Settings,
    predictions_topic: str,
    *,
    recording: bool = False,
    store_for: StoreFactory | None = None,
    redelivery: bool = False,
) -> JoinProcessor:
    """The join of ``predictions_topic`` with its labels, with the settings' TTL and limits.

    ``recording``: events are joined whatever their time (no ``join.max_future_seconds``);
    ``store_for`` and ``redelivery`` as :class:`~pipeline.join.JoinProcessor` takes them.
    """
    join = settings.join
    return JoinProcessor(
        predictions_topic,
        ttl_seconds=join.ttl_seconds,
        max_pending=join.max_pending,
        max_future_seconds=math.inf if recording else join.max_future_seconds,
        store_for=store_for,
        redelivery=redelivery,
    )


def detect_processor(
    settings: Settings,
    *,
    load: Callable[[str], Mapping[str, bytes]] | None = None,
    dedupe_window: int | None = None,
    hold: bool = True,
) -> DetectProcessor:
    """The detection of every model, with the settings' detectors and event-time lateness.

    ``load`` reads a model's saved pieces, ``dedupe_window`` (at-least-once runtimes) and
    ``hold`` as :class:`~pipeline.detect.DetectProcessor` takes them.
    """
    return DetectProcessor(
        detector_config(settings),
        dedupe_window=dedupe_window,
        load=load or (lambda _model_id: {}),
        lateness_seconds=settings.worker.lateness_seconds,
        hold=hold,
    )


def replay_of(
    settings: Settings, config: DetectorConfig | None = None, *, history_every: int = 0
) -> Backtest:
    """A replay of recordings with the settings' join limits and lateness, and ``config`` (the
    settings' detectors if ``None``)."""
    return Backtest(
        ttl_seconds=settings.join.ttl_seconds,
        max_pending=settings.join.max_pending,
        config=config or detector_config(settings),
        history_every=history_every,
        lateness_seconds=settings.worker.lateness_seconds,
    )
