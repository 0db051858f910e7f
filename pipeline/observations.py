"""The internal ``observations`` topic: what the join stage hands to the detection stage.

Keyed by model id, so one worker sees all of a model's observations in order. A value is a
one-byte tag and a JSON body: ``P`` + the PredictionEvent as received (for the data-drift
signals), or ``O`` + a :class:`~detectors.join_buffer.JoinedOutcome` (for the concept-drift
signals).
"""

from __future__ import annotations

from pydantic import TypeAdapter

from detectors.join_buffer import JoinedOutcome
from schemas.codec import decode, encode
from schemas.events import PredictionEvent

_OUTCOME = TypeAdapter(JoinedOutcome)
_PREDICTION, _JOINED = b"P", b"O"


def encode_observation(observation: PredictionEvent | JoinedOutcome) -> bytes:
    """The tagged bytes of a prediction or a joined outcome."""
    if isinstance(observation, PredictionEvent):
        return _PREDICTION + encode(observation)
    return _JOINED + _OUTCOME.dump_json(observation)


def forwarded_prediction(received: bytes) -> bytes:
    """The tagged bytes of a prediction forwarded as it was received (already validated):
    the same as ``encode_observation`` of its decoded event, without encoding it again."""
    return _PREDICTION + received


def decode_observation(data: bytes) -> PredictionEvent | JoinedOutcome:
    """The observation in ``data``; ``ValueError`` for anything we did not write."""
    tag, body = data[:1], data[1:]
    if tag == _PREDICTION:
        return decode(PredictionEvent, body)
    if tag == _JOINED:
        return _OUTCOME.validate_json(body)
    raise ValueError(f"not an observation (tag {tag!r})")
