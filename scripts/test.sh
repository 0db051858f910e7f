#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests on a real Kafka and Redis.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -k join).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy

echo "== services"
if ! .venv/bin/driftstream services status >/dev/null 2>&1; then
  trap '.venv/bin/driftstream services down >/dev/null' EXIT  # stop what this run started
fi
.venv/bin/driftstream services up

echo "== pytest"
status=0
.venv/bin/pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
