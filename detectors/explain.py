"""Why a concept alert fired: the slices of traffic where the model's error changed.

:class:`SliceExplainer` is the bank's signal source ``source/explain`` (:mod:`detectors.sources`;
it emits no signal). It fixes, from the first :data:`REFERENCE` predictions, a few bins per
feature (the first :data:`MAX_FEATURES` features seen): :data:`NUMERIC_BINS` quantile bins of a
number, the :data:`TOP_CATEGORIES` most common categories and ``"other"`` of a string, and a
``missing`` bin. Each later prediction's bin indices wait in a fixed table of :data:`SLOTS`
slots (by a hash of its ``request_id``; a newer prediction may take an older one's slot, which
then goes unexplained: a random sample is lost, not a biased one) until its outcome comes; the
outcome then goes, with its error, its sequence number among the model's outcomes and its
prediction time, into a ring of the latest ``window`` explained outcomes (numpy arrays).

The label-free ``estimated_accuracy`` (:mod:`detectors.calibration`) is explained the same way
by :class:`EstimateExplainer` (``source/explain_estimate``), from a ring of predictions with
their estimated error, each taken as soon as it is made. In a bank the two share one set of bins
(:meth:`EstimateExplainer.bind`): each prediction is binned once, its row read by both.

When a concept signal (``error_rate``, ``abs_error``, ``estimated_accuracy``) fires,
:meth:`SliceExplainer.annotate` splits its ring where the detector split its stream: the
firing's last ``after.n`` outcomes are "after" (``observed`` says which outcome it fired at),
those before them "before", and per slice it gives the shares and error before and after and its
contribution to the change of the error
(``p`` a slice's share, ``e`` its error, ``E`` the model's, bars the mean of before and after)::

    contribution = mean(p) * (e_after - e_before)      # from_error: the slice got worse
                 + (p_after - p_before) * (mean(e) - mean(E))   # from_share: more of a bad slice

which, summed over one feature's slices, is exactly ``E_after - E_before``. The explanation
names the :data:`~schemas.events.MAX_EXPLAINED_SLICES` slices of largest contribution (in the
direction of the change), and reads as ``broad`` unless one feature has slices that carry
:data:`CONCENTRATED_RISE` of the change on at most :data:`CONCENTRATED_TRAFFIC` of the traffic.
It also lists the data signals of the model that alerted since the change point (the bank
shows it every alert it raises, in order).

A batch is taken in one go before the monitors run, so the ring may already hold outcomes after
a firing's: outcomes wait in a pending list and go into the ring up to the firing's when it is
explained, and all of them when the state is saved or, at the end of a batch
(:meth:`SliceExplainer.settle`), once :data:`FOLD_AT` are pending, so any split of a stream
into batches gives the same explanations.

Cost: per prediction, a bin per feature (a ``bisect`` or a dict look-up; once for both
explainers) and two hashes; per outcome, a hash look-up and an append; per explanation, four
``numpy.bincount`` over the ring.
State at the defaults (10 features, ``window`` 1,000, 2,048 slots): the slot table
2,048 x (4 + 10) bytes, the ring 1,000 x (10 + 16) bytes, the bins' edges and categories: about
56 KB at most, under 64 KiB; before the bins are fixed, the reference values (256 per feature).
The estimates' explainer keeps no slot table and a ring of 500: about 17 KB.

>>> from datetime import datetime, timezone
>>> from detectors.join_buffer import JoinedOutcome
>>> from schemas.events import PredictionEvent
>>> explainer = SliceExplainer(window=1000, reference=100)
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> def emit(signal, value): ...
>>> for i in range(2000):  # after 1,500 outcomes, country "NL" gets every answer wrong
...     country = ["NL", "DE", "FR", "BE"][i % 4]
...     event = PredictionEvent(request_id=str(i), model_id="m", model_version="1",
...         timestamp=t0, features={"country": country, "amount": float(i % 7)}, prediction=0)
...     explainer.on_prediction(event, emit)
...     wrong = (i % 9 == 0) or (i >= 1500 and country == "NL")
...     explainer.on_outcome(JoinedOutcome(request_id=str(i), model_id="m", model_version="1",
...         prediction_time=t0, label_time=t0, prediction=0, label=int(wrong),
...         task="classification", error=float(wrong), score=None), emit)
>>> explanation = explainer.explain("error_rate", observed=2000, after=500)
>>> top = explanation.slices[0]
>>> top.feature, top.value, top.share_after, round(top.error_before, 2), top.error_after
('country', 'NL', 0.25, 0.11, 1.0)
>>> explanation.broad, round(top.contribution, 3), explanation.n_after
(False, 0.222, 500)
"""

from __future__ import annotations

import bisect
import zlib
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from detectors.calibration import PerformanceEstimate
from detectors.signals import ABS_ERROR, ERROR_RATE, ESTIMATED_ACCURACY, Signal
from schemas.events import (
    MAX_EXPLAINED_SIGNALS,
    MAX_EXPLAINED_SLICES,
    DriftAlert,
    Explanation,
    SliceContribution,
)

if TYPE_CHECKING:
    from detectors.config import BankConfig
    from detectors.join_buffer import JoinedOutcome
    from detectors.monitor import Firing
    from detectors.sources import Emit, Figure, SignalSource
    from schemas.events import PredictionEvent

MAX_FEATURES = 10
"""The most features of a model explained: the first seen (a prediction's in name order)."""
REFERENCE = 256
"""Predictions whose feature values fix the bins; their outcomes are not explained."""
NUMERIC_BINS = 10
"""Quantile bins of a numeric feature's reference (fewer if it has fewer distinct values)."""
TOP_CATEGORIES = 9
"""Categories of a string feature with a bin of their own; the others share ``"other"``."""
MAX_REFERENCE_CATEGORIES = 64
"""Distinct categories counted per feature in the reference (later ones count as other)."""
MAX_CATEGORY_TEXT = 64
"""A longer category never gets a bin of its own (it counts as other)."""
SLOTS = 2048
"""Predictions waiting for their outcome (a hash table; a newer one may take a slot)."""
MAX_WINDOW = 1000
"""The most explained outcomes kept (the window is twice the bank's ``recent_window``)."""
MIN_AFTER = 300
"""The fewest outcomes taken as "after": when the detector's change point leaves fewer (a small
rise, detected late and placed late), the latest ``MIN_AFTER`` outcomes are."""
MIN_OUTCOMES = 20
"""Fewest explained outcomes on each side of the change point for an explanation."""
CONCENTRATED_RISE = 2 / 3
CONCENTRATED_TRAFFIC = 1 / 3
"""Not broad: one feature's slices carry ``CONCENTRATED_RISE`` of the change of the error on at
most ``CONCENTRATED_TRAFFIC`` of the traffic (before and after, on average), their rise
``CONCENTRATED_Z`` standard errors above the rest's."""
CONCENTRATED_Z = 3.5
MISSING = 15
"""The bin of a missing value (absent, null, or of the other type)."""
BINS = 16
"""Bin indices per feature (numbers 0-9, categories 0-8 and other 9, missing 15)."""
HALVING = 2000
"""The outcomes that left the ring count half as much after every ``HALVING`` more left."""
FOLD_AT = 32
"""Pending values that a ring takes in at the end of a batch (fewer wait for more: folding
costs about as much for one value as for dozens)."""
OTHER = TOP_CATEGORIES
"""The bin of a category without one of its own."""
EXPLAINED = {ERROR_RATE.name: "classification", ABS_ERROR.name: "regression"}
"""The concept signals explained from outcomes, and the task of their outcomes."""
ESTIMATED = ESTIMATED_ACCURACY.name
"""The label-free signal explained from predictions (by their estimated error)."""

Ints = npt.NDArray[np.int64]


class _Feature:
    """One explained feature's bins: numeric ``edges`` or the ``categories`` with a bin."""

    __slots__ = ("_codes", "categories", "edges", "name", "numeric")

    def __init__(
        self,
        name: str,
        numeric: bool,
        edges: tuple[float, ...] = (),
        categories: tuple[str, ...] = (),
    ) -> None:
        self.name, self.numeric, self.edges, self.categories = name, numeric, edges, categories
        self._codes = {category: code for code, category in enumerate(categories)}

    def bin(self, value: float | str | None) -> int:
        """The bin of ``value``."""
        if self.numeric:
            if type(value) is float:
                return bisect.bisect_right(self.edges, value)
            return MISSING
        if type(value) is str:
            return self._codes.get(value, OTHER)
        return MISSING

    def describe(self, index: int) -> dict[str, Any]:
        """The schema fields that name bin ``index``."""
        if index == MISSING:
            return {"missing": True}
        if not self.numeric:
            return {"value": self.categories[index] if index < len(self.categories) else "other"}
        low = self.edges[index - 1] if index > 0 else None
        high = self.edges[index] if index < len(self.edges) else None
        return {"low": low, "high": high}


class _Ring:
    """The latest ``window`` explained values (an outcome's error, or a prediction's estimated
    error) with their sequence number among their signal's values, their prediction's time
    (seconds from the explainer's base) and bins; those that left it, as decayed counts and
    error totals per feature and bin. Values wait in ``pending`` until :meth:`fold`."""

    def __init__(self, window: int, width: int) -> None:
        self.window, self.width = window, width
        self.pending: list[tuple[int, float, int, bytes]] = []  # (seq, error, seconds, bins)
        self.folded = 0
        self.seq: Ints = np.zeros(window, dtype=np.int64)
        self.error = np.zeros(window, dtype=np.float32)
        self.time = np.zeros(window, dtype=np.int32)
        self.bins = np.zeros((window, width), dtype=np.uint8)
        self.old_count = np.zeros(BINS * width)  # per feature and bin: the values out of the ring
        self.old_total = np.zeros(BINS * width)  # and their errors, halved every HALVING leaving
        self.left = 0

    def fold(self, through: int | None) -> None:
        """Move the pending values up to sequence number ``through`` (None: all) to the ring;
        the ones they push out of it go into the old counts (in order, so any split of the
        stream into batches gives the same sums)."""
        pending = self.pending
        if not pending:
            return
        count = len(pending)
        if through is not None:
            count = bisect.bisect_right(pending, through, key=lambda item: item[0])
            if count == 0:
                return
        seqs, errors, times, rows = zip(*pending[:count], strict=True)
        del pending[:count]
        window = self.window
        bins = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(count, self.width)
        error = np.asarray(errors, dtype=np.float32)
        held = min(self.folded, window)
        if (leaving := held + count - window) > 0:  # the oldest held first, then new ones
            oldest = (self.folded - held + np.arange(min(leaving, held))) % window
            new = leaving - len(oldest)
            self._leave(
                np.concatenate((self.bins[oldest], bins[:new])),
                np.concatenate((self.error[oldest], error[:new])).astype(np.float64),
            )
        kept = min(count, window)  # the latest ``window`` new values stay in the ring
        at = (self.folded + count - kept + np.arange(kept)) % window
        self.seq[at] = seqs[count - kept :]
        self.error[at] = error[count - kept :]
        self.time[at] = np.clip(times[count - kept :], -(2**31), 2**31 - 1)
        self.bins[at] = bins[count - kept :]
        self.folded += count

    def _leave(self, bins: npt.NDArray[np.uint8], errors: npt.NDArray[np.float64]) -> None:
        """Count values that leave the ring (their bins, their errors), oldest first, halving
        the old counts after every ``HALVING`` of them."""
        width = self.width
        cells = (bins + np.arange(0, BINS * width, BINS)).ravel()
        weights = np.repeat(errors, width)
        start = 0
        while start < len(errors):
            end = min(len(errors), start + HALVING - self.left % HALVING)
            part = slice(start * width, end * width)
            np.add.at(self.old_count, cells[part], 1.0)  # value after value, as they left
            np.add.at(self.old_total, cells[part], weights[part])
            self.left += end - start
            if self.left % HALVING == 0:
                self.old_count *= 0.5
                self.old_total *= 0.5
            start = end

    def state(self) -> dict[str, Any]:
        """Plain values (:meth:`from_state`); the pending values go into the ring first."""
        self.fold(None)
        return {
            "window": self.window,
            "folded": self.folded,
            "ring": tuple(
                array.tobytes() for array in (self.seq, self.error, self.time, self.bins)
            ),
            "old": (self.old_count.tolist(), self.old_total.tolist(), self.left),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], width: int) -> _Ring:
        ring = cls(state["window"], width)
        seq, error, time, bins = state["ring"]
        ring.seq = np.frombuffer(seq, dtype=np.int64).copy()
        ring.error = np.frombuffer(error, dtype=np.float32).copy()
        ring.time = np.frombuffer(time, dtype=np.int32).copy()
        ring.bins = np.frombuffer(bins, dtype=np.uint8).reshape(ring.window, width).copy()
        old_count, old_total, ring.left = state["old"]
        ring.old_count, ring.old_total = np.array(old_count), np.array(old_total)
        ring.folded = state["folded"]
        return ring


class _Bins:
    """The features' bins, fixed from the first ``reference`` predictions (until then, their
    values), and the row of the prediction binned last. A bank's two explainers share one
    (:meth:`EstimateExplainer.bind`): each prediction is binned (or, in the reference, learnt)
    once, by the first explainer to ask; the other takes its row."""

    __slots__ = ("_event", "_readers", "_row", "features", "numbers", "reference", "seen", "texts")

    def __init__(self, reference: int) -> None:
        self.reference = reference
        self.seen = 0  # predictions in the reference
        self.numbers: dict[str, array[float]] = {}  # 8 bytes a value, no float object kept
        self.texts: dict[str, dict[str, int]] = {}
        self.features: list[_Feature] | None = None
        self._event: PredictionEvent | None = None  # the prediction binned last
        self._row: bytes | None = None  # its row
        self._readers: tuple[object, ...] = ()  # the explainers that took that row

    def row(self, event: PredictionEvent, reader: object) -> bytes | None:
        """``event``'s bin per feature, for ``reader`` (None while the reference fixes the bins,
        or without features): the last row if it is ``event``'s and ``reader`` has not taken it
        yet, else ``event`` binned now (a prediction given twice is learnt twice, as apart)."""
        if event is self._event and reader not in self._readers:
            self._readers += (reader,)
            return self._row
        features = self.features
        if features is None:
            self._learn(event.features)
            row = None
        elif not features:
            row = None
        else:
            values = event.features
            row = bytes([feature.bin(values.get(feature.name)) for feature in features])
        self._event, self._row, self._readers = event, row, (reader,)
        return row

    def _learn(self, values: Mapping[str, float | str | None]) -> None:
        """Add a reference prediction; fix the bins after the last."""
        for name in sorted(values):
            if (numbers := self.numbers.get(name)) is None:
                if len(self.numbers) >= MAX_FEATURES:
                    continue
                numbers = self.numbers[name] = array("d")
            texts = self.texts.setdefault(name, {})
            value = values[name]
            if type(value) is float:
                numbers.append(value)
            elif type(value) is str and (value in texts or len(texts) < MAX_REFERENCE_CATEGORIES):
                texts[value] = texts.get(value, 0) + 1
            elif type(value) is str:
                texts[""] = texts.get("", 0) + 1  # a string all the same, never with a bin
        self.seen += 1
        if self.seen >= self.reference:
            self.features = [
                _fixed(name, self.numbers[name], self.texts[name]) for name in self.numbers
            ]
            self.numbers, self.texts = {}, {}

    def state(self) -> dict[str, Any]:
        """Plain values (:meth:`from_state`); the last row is not kept."""
        features = self.features
        return {
            "reference": self.reference,
            "seen": self.seen,
            "numbers": {name: list(values) for name, values in self.numbers.items()},
            "texts": {name: dict(counts) for name, counts in self.texts.items()},
            "features": None
            if features is None
            else [(f.name, f.numeric, f.edges, f.categories) for f in features],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Bins:
        bins = cls(state["reference"])
        bins.seen = state["seen"]
        bins.numbers = {name: array("d", values) for name, values in state["numbers"].items()}
        bins.texts = {name: dict(counts) for name, counts in state["texts"].items()}
        features = state["features"]
        if features is not None:
            bins.features = [_Feature(n, num, tuple(e), tuple(c)) for n, num, e, c in features]
        return bins


class _SliceBins:
    """What both explainers keep (the features' bins, :class:`_Bins`, shared in a bank; their
    rings of explained values, ``window`` each; the data alerts) and how they explain a firing;
    the subclass says which ring explains a signal (:meth:`_ring_of`) and fills it. ``slots``:
    the predictions that can wait for their outcome (the slot table is made once the bins are
    fixed: :meth:`_table`)."""

    signals: ClassVar[tuple[Signal, ...]] = ()
    figures: ClassVar[Mapping[str, str | None]] = {}

    def __init__(self, window: int, reference: int = REFERENCE, slots: int = SLOTS) -> None:
        self.window, self.slots = window, slots
        self._bins = _Bins(reference)
        self._task: str | None = None
        self._outcomes = 0  # of the model's task: the count of its concept signal's values
        self._estimates = 0  # the count of its estimated_accuracy values
        self._base: int | None = None  # seconds of the first explained value's prediction time
        self._tags = array("I")
        self._rows = bytearray()
        self._rings: dict[str, _Ring] = {}  # the outcomes' by task; the estimates'
        self._data_alerts: list[tuple[int, str]] = []  # (seconds of event time, signal)

    def summary(self) -> dict[str, Figure]:
        """No figures of its own."""
        return {}

    # -- the bank's hook -----------------------------------------------------------------

    def annotate(self, firing: Firing, alert: DriftAlert) -> DriftAlert:
        """``alert`` (raised for ``firing``) with its explanation if it is of a concept signal
        explained; a data alert is remembered for the explanations that follow."""
        if self._ring_of(alert.signal) is None:
            if alert.kind == "data":
                self._data_alerts.append((_seconds(alert.event_time), alert.signal))
                del self._data_alerts[:-MAX_EXPLAINED_SIGNALS]
            return alert
        if firing.events_since_drift_start is None:
            return alert
        explanation = self.explain(
            firing.signal.name, firing.observed, firing.events_since_drift_start
        )
        return (
            alert if explanation is None else alert.model_copy(update={"explanation": explanation})
        )

    def settle(self) -> None:
        """The batch ended: a ring with :data:`FOLD_AT` pending values takes them in."""
        for ring in self._rings.values():
            if len(ring.pending) >= FOLD_AT:
                ring.fold(None)

    # -- explaining ----------------------------------------------------------------------

    def explain(self, signal: str, observed: int, after: int) -> Explanation | None:
        """The explanation of a change of ``signal`` at its ``observed``-th value, the last
        ``after`` values being after the change point (None: not enough outcomes explained)."""
        features = self._bins.features
        if not features or (key := self._ring_of(signal)) is None:
            return None
        if (ring := self._rings.get(key)) is None:
            return None
        ring.fold(observed)
        after = max(after, MIN_AFTER)
        filled = min(ring.folded, ring.window)
        seq, error = ring.seq[:filled], ring.error[:filled].astype(np.float64)
        later = seq > observed - after
        if not later.any():
            return None
        width = len(features)
        codes = ring.bins[:filled].astype(np.int64) + BINS * np.arange(width, dtype=np.int64)
        size = BINS * width
        old_count, old_total = ring.old_count, ring.old_total
        sides = []
        for side, count_old, total_old in ((~later, old_count, old_total), (later, 0.0, 0.0)):
            picked = codes[side].ravel()
            weights = np.repeat(error[side], width)
            count = np.bincount(picked, minlength=size) + count_old
            total = np.bincount(picked, weights=weights, minlength=size) + total_old
            n = float(count[:BINS].sum())
            sides.append((count, total, n, float(total[:BINS].sum()) / n if n else 0.0))
        (count_b, total_b, n_b, mean_b), (count_a, total_a, n_a, mean_a) = sides
        if n_a < MIN_OUTCOMES or n_b < MIN_OUTCOMES:
            return None
        change = mean_a - mean_b
        present = (count_b + count_a) > 0
        share_b, share_a = count_b / n_b, count_a / n_a
        with np.errstate(invalid="ignore", divide="ignore"):
            error_b = np.where(count_b > 0, total_b / count_b, np.nan)
            error_a = np.where(count_a > 0, total_a / count_a, np.nan)
        own_b = np.where(count_b > 0, error_b, error_a)  # no traffic on a side: no own change
        own_a = np.where(count_a > 0, error_a, error_b)
        from_error = (share_a + share_b) / 2 * (own_a - own_b)
        from_share = (share_a - share_b) * ((own_a + own_b) / 2 - (mean_a + mean_b) / 2)
        contribution = from_error + from_share
        direction = 1.0 if change >= 0 else -1.0
        share = (share_a + share_b) / 2
        excess = direction * (contribution - share * change)  # beyond its part of the traffic
        ranked = np.flatnonzero(present)
        order = ranked[np.lexsort((ranked, -excess[ranked]))]
        top = order[:MAX_EXPLAINED_SLICES]
        slices = [
            SliceContribution(
                feature=features[code // BINS].name,
                **features[code // BINS].describe(code % BINS),
                share_before=_round(share_b[code]),
                share_after=_round(share_a[code]),
                error_before=None if count_b[code] == 0 else _round(error_b[code]),
                error_after=None if count_a[code] == 0 else _round(error_a[code]),
                contribution=_round(contribution[code]),
                from_error=_round(from_error[code]),
                from_share=_round(from_share[code]),
            )
            for code in top.tolist()
            if excess[code] > 0
        ]
        concentrated = _concentrated(
            direction * contribution, share, change * direction, width, sides[0], sides[1]
        )
        start = int(ring.time[:filled][later].min()) + (self._base or 0)
        alerted = list(dict.fromkeys(s for t, s in self._data_alerts if t >= start))
        return Explanation(
            slices=slices,
            broad=not concentrated,
            data_signals=alerted,
            n_before=round(n_b),
            n_after=round(n_a),
        )

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain values (:meth:`from_state`); the pending values go into their rings first."""
        self._table()
        bins = self._bins.state()
        return {
            "window": self.window,
            "reference": bins["reference"],
            "slots": self.slots,
            "seen": bins["seen"],
            "numbers": bins["numbers"],
            "texts": bins["texts"],
            "features": bins["features"],
            "task": self._task,
            "outcomes": self._outcomes,
            "estimates": self._estimates,
            "base": self._base,
            "tags": self._tags.tobytes(),
            "rows": bytes(self._rows),
            "rings": {key: ring.state() for key, ring in self._rings.items()},
            "data_alerts": list(self._data_alerts),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        explainer = cls(state["window"], state["reference"], state["slots"])
        explainer._bins = _Bins.from_state(state)
        features = state["features"]
        if features is not None:
            explainer._tags = array("I", state["tags"])
            explainer._rows = bytearray(state["rows"])
            explainer._rings = {
                key: _Ring.from_state(ring, len(features)) for key, ring in state["rings"].items()
            }
        explainer._task, explainer._outcomes = state["task"], state["outcomes"]
        explainer._estimates, explainer._base = state["estimates"], state["base"]
        explainer._data_alerts = [(int(t), str(signal)) for t, signal in state["data_alerts"]]
        return explainer

    # -- helpers -------------------------------------------------------------------------

    def _table(self) -> bytearray:
        """The slot table's rows (its tags in ``_tags``), made once the bins are fixed (empty
        before, and without slots)."""
        features = self._bins.features
        if features is not None and len(self._tags) != self.slots:
            self._tags = array("I", bytes(4 * self.slots))
            self._rows = bytearray(self.slots * len(features))
        return self._rows

    def _ring_of(self, signal: str) -> str | None:
        """The ring that explains ``signal`` (None: not explained here)."""
        raise NotImplementedError

    def _ring(self, key: str, window: int) -> _Ring:
        """The ring of ``key`` (a task, or ``estimated_accuracy``), made on first use."""
        ring = self._rings.get(key)
        if ring is None:
            features = self._bins.features
            assert features is not None
            ring = self._rings[key] = _Ring(window, len(features))
        return ring

    def _since_base(self, moment: datetime) -> int:
        """Seconds of a prediction's time since the first explained value's."""
        seconds = _seconds(moment)
        if self._base is None:
            self._base = seconds
        return seconds - self._base


class SliceExplainer(_SliceBins):
    """Per model: the features' bins and the latest explained outcomes (see the module).

    Parameters
    ----------
    window
        How many explained outcomes are kept (the "before" side reaches this far back).
    reference
        How many first predictions fix the bins.
    slots
        How many predictions can wait for their outcome.
    """

    name: ClassVar[str] = "source/explain"

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> SliceExplainer:
        """The bank's explainer: a window of twice its ``recent_window`` (at most 1,000)."""
        return cls(min(2 * config.recent_window, MAX_WINDOW))

    def bind(self, sources: Mapping[str, SignalSource]) -> None:
        """Reads no other source (:class:`EstimateExplainer` reads the estimate, and shares
        these bins)."""

    def on_prediction(self, event: PredictionEvent, emit: Emit) -> None:
        """Bin the prediction's features and let it wait for its outcome."""
        if (row := self._bins.row(event, self)) is None:
            return
        rows = self._rows or self._table()
        slot, tag = _hashes(event.request_id, self.slots)
        self._tags[slot] = tag
        width = len(row)
        rows[slot * width : (slot + 1) * width] = row

    def on_outcome(self, outcome: JoinedOutcome, emit: Emit) -> None:
        """Take the outcome's error into the pending outcomes, with its prediction's bins."""
        if self._task is None:
            self._task = outcome.task
        if outcome.task != self._task:
            return  # a model of one task is explained; another task's outcomes are ignored
        self._outcomes += 1
        rows = self._rows
        if not rows:
            return  # no prediction waits yet
        slot, tag = _hashes(outcome.request_id, self.slots)
        if self._tags[slot] != tag:
            return
        self._tags[slot] = 0
        width = len(rows) // self.slots
        seconds = self._since_base(outcome.prediction_time)
        row = bytes(rows[slot * width : (slot + 1) * width])
        ring = self._ring(outcome.task, self.window)
        ring.pending.append((self._outcomes, outcome.error, seconds, row))

    def _ring_of(self, signal: str) -> str | None:
        """The ring that explains ``signal`` (None: not explained here)."""
        task = EXPLAINED.get(signal)
        return task if task is not None and task == self._task else None


class EstimateExplainer(_SliceBins):
    """Why the label-free ``estimated_accuracy`` fell: the bank's source
    ``source/explain_estimate``, a piece of its own (about 17 KB at the defaults).

    Each prediction the model's :class:`~detectors.calibration.PerformanceEstimate` gives a
    probability of being right (the ``estimated_accuracy`` value; :meth:`bind` finds the
    estimate among the bank's sources) goes at once, with its bins, into a ring of the latest
    ``window`` with its estimated error (one minus that probability), and an
    ``estimated_accuracy`` alert is split and explained as a concept alert is: the slices
    whose estimated error rose. No slot table: nothing waits for a label. Its bins are fixed
    from the same first predictions as the outcomes' explainer's, so the two name the same
    slices; in a bank it shares that explainer's (:meth:`bind`), and a prediction is binned
    once for both. Its piece still holds the bins: it is restored on its own."""

    name: ClassVar[str] = "source/explain_estimate"
    on_outcome: ClassVar[None] = None

    def __init__(self, window: int, reference: int = REFERENCE, slots: int = 0) -> None:
        super().__init__(window, reference, slots)
        self._estimate: PerformanceEstimate | None = None

    @classmethod
    def for_bank(cls, config: BankConfig, *, arrival_order: bool) -> EstimateExplainer:
        """A window of the bank's ``recent_window`` (at most half of :data:`MAX_WINDOW`)."""
        return cls(min(config.recent_window, MAX_WINDOW // 2))

    def bind(self, sources: Mapping[str, SignalSource]) -> None:
        """The estimate whose ``estimated_accuracy`` it explains (none: it explains nothing),
        and the outcomes' explainer, whose bins it shares if they are equal to its own (they
        are unless one of the two started afresh: a bank restored without its piece)."""
        estimate = sources.get(PerformanceEstimate.name)
        self._estimate = estimate if isinstance(estimate, PerformanceEstimate) else None
        outcomes = sources.get(SliceExplainer.name)
        if isinstance(outcomes, SliceExplainer) and outcomes._bins.state() == self._bins.state():
            self._bins = outcomes._bins

    def on_prediction(self, event: PredictionEvent, emit: Emit) -> None:
        """Count the prediction's ``estimated_accuracy`` value, and take its estimated error
        with its bins into the ring."""
        estimate, bins = self._estimate, self._bins
        if estimate is None or (correct := estimate.correct_of(event)) is None:
            if bins.features is None:
                bins.row(event, self)  # the reference fills before the calibration freezes
            return
        self._estimates += 1
        if (row := bins.row(event, self)) is not None:
            seconds = self._since_base(event.timestamp)
            ring = self._ring(ESTIMATED, self.window)
            ring.pending.append((self._estimates, 1.0 - correct, seconds, row))

    def _ring_of(self, signal: str) -> str | None:
        return ESTIMATED if signal == ESTIMATED else None


def _fixed(name: str, numbers: Sequence[float], texts: dict[str, int]) -> _Feature:
    """A feature's bins from its reference values: numeric if most of them are numbers."""
    if len(numbers) >= sum(texts.values()):
        if not numbers:
            return _Feature(name, True)
        quantiles = np.quantile(np.asarray(numbers), np.arange(1, NUMERIC_BINS) / NUMERIC_BINS)
        edges = sorted({float(q) for q in quantiles} - {min(numbers)})
        return _Feature(name, True, edges=tuple(edges))
    common = sorted(
        (c for c in texts.items() if c[0] and len(c[0]) <= MAX_CATEGORY_TEXT),
        key=lambda c: (-c[1], c[0]),
    )
    return _Feature(name, False, categories=tuple(c for c, _ in common[:TOP_CATEGORIES]))


def _concentrated(
    contribution: Any, share: Any, change: float, width: int, before: Any, after: Any
) -> bool:
    """Whether one feature's slices, taken by contribution per share of traffic, carry
    ``CONCENTRATED_RISE`` of ``change`` on at most ``CONCENTRATED_TRAFFIC`` of the traffic, and
    their rise exceeds the rest's by ``CONCENTRATED_Z`` standard errors (noise on a few
    outcomes per slice concentrates a broad change by chance otherwise)."""
    if change <= 0:
        return False
    for feature in range(width):
        cut = slice(BINS * feature, BINS * (feature + 1))
        part, traffic = contribution[cut], share[cut]
        used = np.flatnonzero((traffic > 0) & (part > 0))
        lift = part[used] / traffic[used]
        chosen: list[int] = []
        carried = taken = 0.0
        for index in used[np.argsort(-lift, kind="stable")].tolist():
            carried += float(part[index])
            taken += float(traffic[index])
            chosen.append(index)
            if taken > CONCENTRATED_TRAFFIC:
                break
            if carried >= CONCENTRATED_RISE * change:
                if _separate(cut, chosen, before, after) >= CONCENTRATED_Z:
                    return True
                break
    return False


def _separate(cut: slice, chosen: list[int], before: Any, after: Any) -> float:
    """How many standard errors the rise of the error in bins ``chosen`` of one feature
    exceeds the rise in its other bins (binomial variances; for a mean absolute error, the
    square of the mean stands in)."""
    rises, variance = [], 0.0
    for side in (before, after):
        count, total = side[0][cut], side[1][cut]
        inside = np.zeros(BINS, dtype=bool)
        inside[chosen] = True
        for group in (inside, ~inside):
            n = float(count[group].sum())
            if n < 1:
                return 0.0
            mean = float(total[group].sum()) / n
            variance += (mean * (1 - mean) if mean <= 1 else mean * mean) / n
            rises.append(mean)
    (in_b, out_b, in_a, out_a) = rises
    return float(((in_a - in_b) - (out_a - out_b)) / max(variance, 1e-12) ** 0.5)


def _hashes(request_id: str, slots: int) -> tuple[int, int]:
    """A request's slot and its tag there (never 0, which marks an empty slot)."""
    data = request_id.encode()
    return zlib.crc32(data) % slots, zlib.adler32(data) | 1


def _seconds(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


def _round(value: Any) -> float:
    return round(float(value), 6)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
