"""The Kafka-native runtime (the default): confluent-kafka in batches, Kafka transactions."""
