# The driftstream CLI, worker and simulator in one image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY producers producers
COPY stream_app stream_app
COPY detectors detectors
COPY schemas schemas
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["driftstream", "--help"]
