#!/usr/bin/env bash
# The demo: trains real models in every framework with `autotrack.autolog()` on, then prints
# the recorded runs (`autotrack runs`). Runs land in ./autotrack-runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
nox -s demo "$@"
