"""Which detectors run on which signal of a model, and the bank's limits.

Defaults: concept signals (``error_rate``, ``abs_error``) run ADWIN and Page-Hinkley, data
signals a stricter ADWIN, except where :data:`SIGNAL_DEFAULTS` says otherwise (the G-test on
``category:*``, ADWIN tuned for ``volume`` and ``label_delay``). ``signal_detectors``
overrides that per signal, by exact name first and then by the first matching shell-style
pattern (an empty list switches a signal's detectors off).
Detector lists accept names or full specs. Binary-only detectors are skipped on numeric
signals and numeric-only ones on binary signals, so one list can serve both. A detector file
(:class:`DetectorFile`, what ``driftstream calibrate`` writes) gives detectors per model and
signal on top of the settings' lists.

>>> config = BankConfig(signal_detectors={"feature:*": [], "error_rate": ["adwin", "ddm"]})
>>> from detectors.signals import ABS_ERROR, ERROR_RATE, SCORE, Signal
>>> [spec.name for spec in config.detectors_for(ERROR_RATE)]
['adwin', 'ddm']
>>> [spec.name for spec in config.detectors_for(Signal("feature:age", "data", binary=False))]
[]
>>> [spec.name for spec in config.detectors_for(ABS_ERROR)], config.detectors_for(SCORE)[0].name
(['adwin', 'page_hinkley'], 'adwin')
>>> country = Signal("category:country", "data", binary=False, categorical=True)
>>> [spec.name for spec in config.detectors_for(country)]
['g_test']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from detectors.registry import DetectorSpec, accepts
from detectors.signals import Signal


class DetectorDefaults(Protocol):
    """What :meth:`BankConfig.from_settings` reads: ``stream_app.settings.DetectorSettings``."""

    @property
    def concept_detectors(self) -> Sequence[DetectorSpec]: ...
    @property
    def data_detectors(self) -> Sequence[DetectorSpec]: ...
    @property
    def alert_cooldown_events(self) -> int: ...
    @property
    def signal_detectors(self) -> Mapping[str, Sequence[DetectorSpec]]: ...
    @property
    def models(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def file(self) -> Path | None: ...


def _specs(value: Any) -> Any:
    """Accept ``"adwin"`` for ``{"name": "adwin"}`` in a list of detectors."""
    if isinstance(value, list | tuple):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


DetectorList = Annotated[tuple[DetectorSpec, ...], BeforeValidator(_specs)]

DEFAULT_CONCEPT_DETECTORS = (DetectorSpec(name="adwin"), DetectorSpec(name="page_hinkley"))
"""ADWIN and Page-Hinkley at the registry's defaults on the error signals."""

DEFAULT_DATA_DETECTORS = (DetectorSpec(name="adwin", params={"delta": 1e-4}),)
"""ADWIN with a 20x stricter delta than on error signals: a model has many data signals (one
per feature), and heavy-tailed, multimodal features gave ADWIN at delta 0.002 false alarms in
a stable stream (``hvalue`` of the simulator's loan data, in the order the live worker saw it).
It costs at most one more ADWIN clock (32 values) of detection delay in the simulator's
data-drift scenario."""

SIGNAL_DEFAULTS: Mapping[str, tuple[DetectorSpec, ...]] = MappingProxyType(
    {
        "category:*": (DetectorSpec(name="g_test"),),
        "volume": (DetectorSpec(name="poisson_cusum"),),
        "label_delay": (DetectorSpec(name="adwin", params={"delta": 1e-6}),),
    }
)
"""Built-in detectors of the signals the kind defaults do not suit, consulted after
``signal_detectors``: the G-test on categories (ADWIN cannot read strings); on ``volume``, the
Poisson CUSUM of :mod:`detectors.poisson` from the 10th interval on (it replaced an ADWIN at
delta 1e-4 tested every value, which needed about 30 intervals of history to see a 5x surge
at 100 requests per second); on ``label_delay``, a 100x stricter
ADWIN (delays are long-tailed: at delta 1e-4, 1 false alarm in 20 streams of 20,000
exponential delays, none at 1e-6, which detects a doubled mean delay 23-87 values later)."""


class BankConfig(BaseModel):
    """The detector configuration of one model's :class:`~detectors.bank.DetectorBank`.

    Parameters
    ----------
    concept_detectors
        Run on concept signals unless overridden.
    data_detectors
        Run on data signals unless overridden.
    signal_detectors
        Signal name or ``fnmatch`` pattern -> detectors, overriding the two defaults.
    alert_cooldown_events
        After an alert of a (signal, detector), further firings of that pair are not alerted
        until the signal has seen this many more values.
    incident_gap_seconds
        An alert detected at most this long after the latest alert of the model's open
        incident (of the same model version) joins it; a later one opens a new incident.
    max_feature_signals, max_class_signals
        Caps on the number of ``feature:*`` and ``predicted_class:*`` signals per model.
    recent_window
        Values kept per signal for the live estimate and the change-point estimate.
    positive_label
        The class whose rolling precision and recall the bank's summary reports, compared as
        text with the predictions and labels (default ``"1"``: the class ``1`` or ``"1"``).
    calibration_outcomes
        Joined classification outcomes with a score from which the label-free estimate of
        accuracy, precision and recall learns its calibration, then frozen (0: no estimate;
        :mod:`detectors.calibration`).
    quality_reference
        Values of a feature that set its reference for ``invalid:<name>``: the range of a
        numeric feature, the categories of a string one.
    volume_interval_seconds
        The event-time interval of the ``volume`` signal (predictions per second in each).
    volume_grace_seconds
        How long after an interval's end its predictions still count (later ones are counted
        as late); it delays every ``volume`` value by as much. None: the runtime's default,
        10 s where predictions reach the bank in event-time order (the Kafka-native runtime,
        the replay), 600 s where they come in arrival order (the Faust runtime).
    volume_adaptive_interval
        Lengthen the ``volume`` interval (by powers of two) until the model's rate gives 32
        predictions per interval (:class:`~detectors.volume.TrafficVolume`); off: always
        ``volume_interval_seconds``.
    label_horizon_seconds
        The cap, and the initial value, of the label horizon: how long after its prediction
        a label counts as arrived for ``label_coverage``. Keep it at most the join's TTL
        (default 3600 s, as the TTL's), after which a label cannot join anyway. With
        ``label_horizon_learned`` the horizon is twice the learned 99th percentile of the
        model's label delays, at most this; coverage values come the horizon (plus one
        interval) after their predictions.
    label_horizon_learned
        Learn the horizon from the model's delays (:class:`~detectors.label_health.LabelHealth`);
        off: always ``label_horizon_seconds``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    concept_detectors: DetectorList = DEFAULT_CONCEPT_DETECTORS
    data_detectors: DetectorList = DEFAULT_DATA_DETECTORS
    signal_detectors: dict[str, DetectorList] = Field(default_factory=dict)
    alert_cooldown_events: int = Field(default=1000, ge=0)
    incident_gap_seconds: float = Field(default=3600.0, ge=0)
    max_feature_signals: int = Field(default=100, ge=0)
    max_class_signals: int = Field(default=20, ge=0)
    recent_window: int = Field(default=500, ge=2)
    positive_label: Annotated[str, BeforeValidator(str)] = "1"
    calibration_outcomes: int = Field(default=1000, ge=0)
    quality_reference: int = Field(default=1000, ge=1)
    volume_interval_seconds: float = Field(default=10.0, gt=0)
    volume_grace_seconds: float | None = Field(default=None, ge=0)
    volume_adaptive_interval: bool = True
    label_horizon_seconds: float = Field(default=3600.0, gt=0)
    label_horizon_learned: bool = True

    @classmethod
    def from_settings(cls, settings: DetectorDefaults, **overrides: Any) -> BankConfig:
        """The configuration named by the application settings, plus field overrides."""
        return cls.model_validate(
            {
                "concept_detectors": settings.concept_detectors,
                "data_detectors": settings.data_detectors,
                "alert_cooldown_events": settings.alert_cooldown_events,
                "signal_detectors": settings.signal_detectors,
                **overrides,
            }
        )

    def detectors_for(self, signal: Signal) -> tuple[DetectorSpec, ...]:
        """The detectors to run on ``signal``, filtered to those that accept its values."""
        specs = _lookup(self.signal_detectors, signal.name)
        if specs is None:
            specs = _lookup(SIGNAL_DEFAULTS, signal.name)
        if specs is None:
            specs = self.concept_detectors if signal.kind == "concept" else self.data_detectors
        return tuple(spec for spec in specs if accepts(spec.name, signal))


def _lookup(
    detectors: Mapping[str, Sequence[DetectorSpec]], name: str
) -> Sequence[DetectorSpec] | None:
    """The detectors of signal ``name``: by exact name, else by the first matching pattern."""
    specs = detectors.get(name)
    if specs is None:
        specs = next(
            (specs for pattern, specs in detectors.items() if fnmatchcase(name, pattern)), None
        )
    return specs


class CalibratedSignal(BaseModel):
    """A signal's detectors in a :class:`DetectorFile`, and what they are expected to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detectors: DetectorList
    false_alarms_per_million: float | None = Field(default=None, ge=0)
    """Expected false alarms per million values of the signal, all its detectors together."""
    median_delay: float | None = Field(default=None, ge=0)
    """Median values from a standard shift to its detection (None: most shifts missed)."""


class DetectorFile(BaseModel):
    """Detectors per model and signal (JSON), as ``driftstream calibrate`` writes them.

    ``models`` maps a model id to signal names to detectors; the other fields say how they
    were chosen: the false-alarm budget, the standard shift (in standard deviations of the
    signal) whose detection delay was measured, and the reference recording.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, dict[str, CalibratedSignal]]
    false_alarms_per_million: float | None = Field(default=None, gt=0)
    shift_sd: float | None = Field(default=None, gt=0)
    reference: str | None = None


class DetectorFileError(ValueError):
    """A detector file that cannot be used; the message is one line naming the file and the
    field."""


def read_detector_file(path: Path) -> DetectorFile:
    """The :class:`DetectorFile` at ``path``; :class:`DetectorFileError` if it is missing,
    not JSON, or not valid (the first invalid field, dotted: ``models.m.score.detectors``)."""
    try:
        return DetectorFile.model_validate(json.loads(path.read_bytes()))
    except OSError as exc:
        raise DetectorFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        reason = first["msg"].removeprefix("Value error, ")
        raise DetectorFileError(f"{path}: {where}: {reason}{more}") from exc
    except ValueError as exc:  # JSON or UTF-8
        raise DetectorFileError(f"{path}: not JSON: {exc}") from exc


class DetectorConfig(BaseModel):
    """Per-model configurations with a default for every other model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: BankConfig = Field(default_factory=BankConfig)
    models: dict[str, BankConfig] = Field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: DetectorDefaults, **overrides: Any) -> DetectorConfig:
        """The default from the settings (plus ``overrides``), and each model's own on top of
        it: the signals of the detector file ``settings.file`` (read here,
        :class:`DetectorFileError` if it cannot be used), then ``settings.models`` (model id ->
        BankConfig fields)."""
        default = BankConfig.from_settings(settings, **overrides)
        calibrated = read_detector_file(settings.file).models if settings.file else {}
        models = {}
        for model_id in [*calibrated, *(m for m in settings.models if m not in calibrated)]:
            fields = dict(default)
            if signals := calibrated.get(model_id):
                calibrated_detectors = {name: signal.detectors for name, signal in signals.items()}
                fields["signal_detectors"] = {**default.signal_detectors, **calibrated_detectors}
            models[model_id] = BankConfig.model_validate(
                {**fields, **settings.models.get(model_id, {})}
            )
        return cls(default=default, models=models)

    def for_model(self, model_id: str) -> BankConfig:
        """The configuration of ``model_id``."""
        return self.models.get(model_id, self.default)
