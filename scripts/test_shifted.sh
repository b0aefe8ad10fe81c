#!/usr/bin/env bash
# The test suite with the clock moved ahead (default 40 days; `scripts/test_shifted.sh 400` for a year
# and more), DuckDB only: catches tests whose fixed dates only pass near the day they were written.
# Python's clocks move (time-machine, in every Python process the run starts); the databases' own
# now() does not, so a test comparing the two may fail here and be fine in CI: read failures with that
# in mind. Not part of .ci/run (a second full run); run it before a landing that touched dates.
set -euo pipefail
cd "$(dirname "$0")/.."
days="${1:-40}"
shift || true
echo "== pytest with the clock ${days} days ahead (DuckDB only)"
MEDSCRM_TEST_SHIFT_DAYS="$days" PYTHONPATH="$PWD/scripts/timeshift${PYTHONPATH:+:$PYTHONPATH}" \
  uv run pytest -q -p no:cacheprovider -m "not postgres" "$@"
