"""The drift detectors driftstream can run, by name, with defaults tuned for monitoring.

A :class:`DetectorSpec` names a registered detector and overrides some of its parameters;
:func:`build_detector` turns it into a fresh river detector. The defaults differ from river's
where river's raise false alarms on long stable streams. Measured on 10 seeded streams of
20,000 stable values and on abrupt shifts after 5,000 values (delay = labelled events after
the shift until the detector fired; "0.25" means an error rate of 0.1 jumping to 0.25):

=============  ==============================================  ============  ==============
name           defaults                                        false alarms  delay
=============  ==============================================  ============  ==============
adwin          delta=0.002, clock=32, grace_period=100         0             0.25: 87-311,
                                                                             0.3: 87-151,
                                                                             N+1sd: 23-55
page_hinkley   standardised; delta=0.15, threshold=50,         0 (20 seeds)  0.25: 77-234,
               alpha=1.0, min_instances=100, warm_up=100                     0.3: 49-166,
                                                                             N+1sd: 42-69
ddm            warm_start=1000, warning 3, drift 4 (binary)    0             0.25: 304-979
eddm           warm_start=500, alpha=0.8, beta=0.7 (binary)    0             0.3: 883-2445
hddm_a         drift 1e-4, warning 1e-3 (binary)               0             0.25: 87-619
hddm_w         river's defaults (binary)                       0             0.25: 76-1337
kswin          alpha=1e-6, window 300, stat 100, seed=42       0 (4x10k)     N+1.5sd: 40-61
               (numeric only)
g_test         reference=1000, window=500, top_k=10,           0 (9 values)  1/9->0.4:
               clock=100, p_value=1e-6 (categorical only)                    199-299, 3 up
                                                                             3 down 0.05:
                                                                             399-699
=============  ==============================================  ============  ==============

``poisson_cusum`` (:mod:`detectors.poisson`) is for rates of count streams (``volume``): two
Poisson CUSUMs against the learned rate, in the stream's own effective counts.

The signals of data quality, traffic and label health (``missing:*``, ``invalid:*``,
``category:*``, ``volume``, ``label_coverage``, ``label_delay``) use these detectors with the
per-signal defaults of :data:`detectors.config.SIGNAL_DEFAULTS`; on the simulator's scenarios
(``bench.data_quality``, 5 seeds) none raised a false alarm in 5 stable streams of 100,000
predictions, and they detected a category shift after 9-21 s of event time, a feature going
missing after 1-2 s, a 5x surge after 52-60 s, labels stopping or arriving 4x later after
614-622 s (a 600 s label horizon plus an interval).

River's own defaults are much noisier: Page-Hinkley (threshold 50 on raw values, forgetting
factor 0.9999) fires 12-16 times on 20,000 N(0, 1) values, KSWIN (alpha 0.005) 26-30 times,
DDM once or twice per 20,000 Bernoulli(0.1) and EDDM 9-59 times. The warning zones of DDM and
EDDM still open now and then on stable streams, which is why warning alerts are opt-in
(:attr:`DetectorSpec.warnings`).

>>> spec = DetectorSpec(name="adwin", params={"delta": 0.001})
>>> detector = build_detector(spec)
>>> detector.delta, detector.grace_period
(0.001, 100)
>>> from detectors.signals import ERROR_RATE, SCORE
>>> accepts("ddm", SCORE), accepts("kswin", ERROR_RATE), accepts("g_test", SCORE)
(False, False, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from river import drift

from detectors.category import CategoryShift
from detectors.poisson import RateShift
from detectors.signals import Signal
from detectors.standardized import Standardized

ParamValue = bool | int | float | str


def _page_hinkley(warm_up: int = 100, **params: Any) -> Standardized:
    return Standardized(drift.PageHinkley(**params), warm_up=warm_up)


@dataclass(frozen=True, slots=True)
class RegisteredDetector:
    """How to build one kind of detector and on which signals it may run."""

    factory: Callable[..., Any]
    defaults: Mapping[str, ParamValue]
    binary_only: bool = False
    numeric_only: bool = False
    categorical_only: bool = False


REGISTRY: Mapping[str, RegisteredDetector] = MappingProxyType(
    {
        "adwin": RegisteredDetector(
            factory=drift.ADWIN,
            defaults={"delta": 0.002, "clock": 32, "grace_period": 100},
        ),
        "page_hinkley": RegisteredDetector(
            factory=_page_hinkley,
            defaults={
                "warm_up": 100,
                "min_instances": 100,
                "delta": 0.15,
                "threshold": 50.0,
                "alpha": 1.0,
                "mode": "both",
            },
        ),
        "ddm": RegisteredDetector(
            factory=drift.binary.DDM,
            defaults={"warm_start": 1000, "warning_threshold": 3.0, "drift_threshold": 4.0},
            binary_only=True,
        ),
        "eddm": RegisteredDetector(
            factory=drift.binary.EDDM,
            defaults={"warm_start": 500, "alpha": 0.8, "beta": 0.7},
            binary_only=True,
        ),
        "hddm_a": RegisteredDetector(
            factory=drift.binary.HDDMA,
            defaults={"drift_confidence": 1e-4, "warning_confidence": 1e-3},
            binary_only=True,
        ),
        "hddm_w": RegisteredDetector(
            factory=drift.binary.HDDMW,
            defaults={"drift_confidence": 1e-3, "warning_confidence": 5e-3, "lambda_val": 0.05},
            binary_only=True,
        ),
        "kswin": RegisteredDetector(
            factory=drift.KSWIN,
            defaults={"alpha": 1e-6, "window_size": 300, "stat_size": 100, "seed": 42},
            numeric_only=True,
        ),
        "poisson_cusum": RegisteredDetector(
            factory=RateShift,
            defaults={"ratio": 2.0, "threshold": 16.0, "grace_period": 10, "forget": 0.02},
            numeric_only=True,
        ),
        "g_test": RegisteredDetector(
            factory=CategoryShift,
            defaults={"reference": 1000, "window": 500, "top_k": 10, "clock": 100, "p_value": 1e-6},
            categorical_only=True,
        ),
    }
)


class DetectorSpec(BaseModel):
    """One detector to run on a signal: a registered name and parameter overrides.

    Parameters
    ----------
    name
        A key of :data:`REGISTRY`; it is also the alert's ``detector`` field.
    params
        Overrides of the registered defaults (the river constructor's keyword arguments).
    warnings
        Also alert, with severity ``"warning"``, when a detector with a warning zone (DDM,
        EDDM, HDDM_A, HDDM_W) enters it. Off by default: those zones open on stable streams.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, ParamValue] = Field(default_factory=dict)
    warnings: bool = False

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in REGISTRY:
            raise ValueError(f"unknown detector {name!r}; known: {', '.join(REGISTRY)}")
        return name

    @model_validator(mode="after")
    def _buildable(self) -> DetectorSpec:
        try:
            build_detector(self)
        except TypeError as error:
            raise ValueError(f"bad parameters for {self.name!r}: {error}") from error
        return self


def build_detector(spec: DetectorSpec) -> Any:
    """A fresh detector for ``spec``: the registered defaults updated with its params."""
    registered = REGISTRY[spec.name]
    return registered.factory(**{**registered.defaults, **spec.params})


def accepts(name: str, signal: Signal) -> bool:
    """Whether detector ``name`` may run on ``signal``: categorical detectors on categorical
    signals only, the others on binary (0/1) or numeric ones as they allow."""
    registered = REGISTRY[name]
    if registered.categorical_only or signal.categorical:
        return registered.categorical_only and signal.categorical
    return not registered.numeric_only if signal.binary else not registered.binary_only
