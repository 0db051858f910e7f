"""The Faust runtime: the pipeline's processors as faust-streaming agents (``--engine faust``)."""
