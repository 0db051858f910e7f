"""The pure detection core: plain objects in, plain objects out, no Faust, Kafka or Redis.

- ``join``: predictions joined with labels exactly once, event-time TTL (``JoinBuffer``)
- ``signals``: the streams detectors watch (``error_rate``, ``feature:<name>``, ...)
- ``registry`` / ``standardized``: the detectors by name, with tuned defaults
- ``config``: which detectors run on which signal of a model
- ``window`` / ``monitor``: one signal's detectors, firings with before/after statistics
- ``policy``: cooldown and deterministic alert ids
- ``bank``: all of one model's detectors (``DetectorBank``), summary, snapshot/restore
- ``sources``: the contract and registry of the signal sources, per-event state that emits
  signals (``volume``, ``label_health``, the ``calibration`` estimate, ``positive_class``)
- ``calibration``: the label-free accuracy estimate (``estimated_accuracy``) from the scores
- ``budget``: detector settings chosen for a false-alarm budget from a reference stream
"""
