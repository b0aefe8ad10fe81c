#!/usr/bin/env bash
# Shared set-up: uv and the locked environment. Sourced by demo.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v uv >/dev/null 2>&1; then
  echo "== installing uv (the Python package manager that reads uv.lock)"
  python3 -m pip install --quiet "uv==0.13.8"
fi
echo "== installing medscrm and its locked dependencies (uv sync --frozen)"
uv sync --frozen --quiet
