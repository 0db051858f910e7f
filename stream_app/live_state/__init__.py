"""The live per-model view in Redis, written in batches off the event path: its key names
(:mod:`.keys`), the writer the workers record into (:mod:`.writer`) and the reads of the
CLI, the report and the demo (:mod:`.reader`).

The worker records what happened (``count``, ``set_model``, ``set_summary``, ``add_alert``) in
memory; ``flush`` sends it all in one pipeline, typically once a second. Counters are sent as
``HINCRBY`` deltas, so several workers add up; states are overwritten. When Redis is down the
flush fails, the view is "stale" (logged once per outage and counted), nothing blocks, and the
pending changes go out with the next successful flush. A Redis that comes back empty (restarted
without persistence, flushed) is noticed by a per-writer key that has vanished: the writer then
writes again everything it wrote since it started. Key layout (prefix ``driftstream:``):

- ``models``: set of model ids seen
- ``pipeline``: hash of counts that belong to no model (dead-lettered, evicted, failed flushes)
- ``model:{id}``: hash of counts, rolling accuracy / error rate, status, last alert id, latest
  incident id, updated_at, and of the latest explained concept alert its id
  (``last_explained_alert_id``), signal (``last_explained_signal``) and explanation
  (``last_explanation``: an :class:`~schemas.events.Explanation` as JSON)
- ``model:{id}:signals``: hash of per-signal estimate and detector status (JSON per signal)
- ``model:{id}:quality``: hash of per-feature data-quality counts (JSON per feature: missing,
  wrong_type, out_of_range, unseen_category)
- ``model:{id}:history``: capped stream, one entry per flush of a model that changed (field
  ``point``: a :class:`~detectors.history.HistoryPoint` as JSON: event time, counts, rolling
  accuracy, precision, recall, error rate, MAE, every signal's estimate); what
  ``driftstream report`` draws
- ``alerts`` and ``alerts:{id}``: capped streams of alerts (JSON in field ``alert``)
- ``writer:{id}``: one key per running writer (expires a day after its last flush)
"""
