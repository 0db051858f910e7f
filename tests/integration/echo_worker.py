"""A minimal Faust worker for the library compatibility test (``test_faust_library.py``):
upper-cases IN into OUT, on the app ``create_app`` builds; none of driftstream's stages.

Run as ``python -m tests.integration.echo_worker IN OUT DATA_DIR`` with the usual
``DRIFTSTREAM_*`` settings in the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import faust

from stream_app.runtimes.faust.app import create_app
from stream_app.settings import Settings


def main(source_name: str, sink_name: str, data_dir: str) -> None:
    app = create_app(Settings(), f"echo-{source_name}", Path(data_dir))
    source = app.topic(source_name, key_type=bytes, value_type=bytes, value_serializer="raw")
    sink = app.topic(sink_name, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(source)
    async def echo(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            await sink.send(key=key, value=value.upper())

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main(*sys.argv[1:4])
