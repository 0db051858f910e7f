"""Getting events into Kafka: the producer and the drift simulator.

- ``producers.kafka_producer.EventProducer``: predictions and labels to Kafka, keyed by
  request_id, every delivery accounted.
- ``producers.simulator``: seeded model traffic under drift scenarios (``ModelTraffic``,
  ``simulate``, ``Truth``).
- ``producers.event_file``: the same events as a JSON-lines file, for offline replay.
"""
