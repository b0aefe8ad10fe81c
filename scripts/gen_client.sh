#!/usr/bin/env bash
# Regenerate the Python client of /api/v1 (package medscrm_client, shipped in the wheel) from the
# app's OpenAPI document, with a pinned openapi-python-client run by uvx (it is not a dependency of
# the project: it pins an older typer). Usage: scripts/gen_client.sh [OUTPUT_DIR]
# (default src/medscrm_client; tests/test_client.py generates into a temporary directory and diffs).
set -euo pipefail
cd "$(dirname "$0")/.."
GENERATOR="openapi-python-client==0.29.1"
OUT="${1:-src/medscrm_client}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
uv run --frozen python scripts/openapi_v1.py > "$tmp/openapi.json"
printf 'project_name_override: medscrm-client\npackage_name_override: medscrm_client\n' > "$tmp/config.yml"
uvx --from "$GENERATOR" openapi-python-client generate --path "$tmp/openapi.json" \
  --config "$tmp/config.yml" --meta none --output-path "$tmp/out" >"$tmp/log" 2>&1 \
  || { cat "$tmp/log" >&2; exit 1; }
rm -rf "$tmp/out/.ruff_cache" "$OUT"
mv "$tmp/out" "$OUT"
echo "generated $OUT ($(find "$OUT" -name '*.py' | wc -l) files)"
