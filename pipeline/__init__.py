"""The pipeline: the worker's per-record logic as processors that no runtime owns.

A processor takes records and returns *effects* (:mod:`pipeline.effects`): records to emit,
counter deltas, alerts, and the state it changed; it imports no Kafka, Faust or Redis client.
The runtimes (``stream_app.runtimes``) carry the effects out; the offline replay
(:mod:`pipeline.backtest`) runs the same processors in one process.

- :mod:`pipeline.edge`: decoding and the checks every input record must pass;
- :mod:`pipeline.join`: the join by request id (:class:`~pipeline.join.JoinProcessor`);
- :mod:`pipeline.detect`: detection per model (:class:`~pipeline.detect.DetectProcessor`);
- :mod:`pipeline.observations`, :mod:`pipeline.dead_letters`: what the stages emit;
- :mod:`pipeline.state`: per-partition state with its changes, for changelogs.
"""
