#!/usr/bin/env bash
# The driftstream demo, end to end, on local Kafka and Redis. Options go to `driftstream demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/driftstream demo "$@"
