"""Local development, apart from the product: the Kafka and Redis services the project starts
without Docker (``driftstream services``, the tests, the benchmarks) and the demo
(``driftstream demo``). No runtime imports it: a worker in production needs none of it."""
