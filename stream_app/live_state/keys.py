"""The Redis key names of the live state under one prefix (layout: :mod:`stream_app.live_state`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveStateKeys:
    """Redis key names under one prefix."""

    prefix: str

    @property
    def models(self) -> str:
        return f"{self.prefix}models"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def pipeline(self) -> str:
        return f"{self.prefix}pipeline"

    def model(self, model_id: str) -> str:
        return f"{self.prefix}model:{model_id}"

    def signals(self, model_id: str) -> str:
        return f"{self.prefix}model:{model_id}:signals"

    def quality(self, model_id: str) -> str:
        return f"{self.prefix}model:{model_id}:quality"

    def history(self, model_id: str) -> str:
        return f"{self.prefix}model:{model_id}:history"

    def model_alerts(self, model_id: str) -> str:
        return f"{self.prefix}alerts:{model_id}"

    def writer(self, writer_id: str) -> str:
        return f"{self.prefix}writer:{writer_id}"

    def sources(self, model_id: str | None) -> str:
        """The per-partition totals behind a model's (or the pipeline's) exact counters."""
        return (
            f"{self.prefix}pipeline:sources"
            if model_id is None
            else (f"{self.prefix}model:{model_id}:sources")
        )
