#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them (lint + pytest), then, for the
# whole suite (no arguments), scripts/check_wheel.sh: the built wheel installed with pip, no lock.
set -euo pipefail
source "$(dirname "$0")/_setup.sh"
bash scripts/ensure_postgres.sh
bash scripts/ensure_chromium.sh
echo "== ruff"
uv run ruff check src tests benchmarks
echo "== import layers (import-linter: the contract in pyproject.toml)"
uv run lint-imports
echo "== pytest (DuckDB and PostgreSQL)"
uv run pytest -q "$@"
if [ "$#" -eq 0 ]; then
  # the whole suite (what CI runs): also check what `pip install medscrm` gives a user
  bash scripts/check_wheel.sh
fi
