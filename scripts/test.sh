#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them (lint + pytest).
set -euo pipefail
source "$(dirname "$0")/_setup.sh"
bash scripts/ensure_postgres.sh
bash scripts/ensure_chromium.sh
echo "== ruff"
uv run ruff check src tests benchmarks
echo "== pytest (DuckDB and PostgreSQL)"
uv run pytest -q "$@"
