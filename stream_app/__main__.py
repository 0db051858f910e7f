"""``python -m stream_app`` is the ``driftstream`` command."""

from stream_app.cli import app

app()
