#!/usr/bin/env bash
# Run both parts of the project end to end and write every result into evaluation/.
# Placeholder until the Part 1 and Part 2 entry points exist: it sets up the environment and stops
# with a clear error, so nobody mistakes an empty evaluation/ for a finished run.
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup_env.sh
echo "error: run_all.sh has no steps yet; the Part 1 and Part 2 entry points are not built" >&2
exit 1
