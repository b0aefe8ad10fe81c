#!/usr/bin/env bash
# Set up medscrm and run `medscrm demo` in an empty working directory (./demo-workspace).
set -euo pipefail
source "$(dirname "$0")/_setup.sh"
rm -rf demo-workspace && mkdir -p demo-workspace && cd demo-workspace
uv run --project "$ROOT" medscrm demo "$@"
