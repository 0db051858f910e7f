"""``driftstream notify``: deliver the alerts topic to webhooks, commands and MLflow.

- ``sinks``: what takes an alert (:class:`~stream_app.notify.sinks.Sink`), and the webhook and
  command sinks;
- ``mlflow_sink``: tags of the matching MLflow model version (the ``mlflow`` extra);
- ``message``: the payload every sink gets, and which alerts pass the filters;
- ``delivery``: retries with backoff, then a dead letter;
- ``consumer``: the consumer group on the alerts topic that commits only after delivery.
"""
