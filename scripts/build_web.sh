#!/usr/bin/env bash
# Vendor the console's front-end packages from the npm registry (pinned by web/package-lock.json)
# into src/medscrm/web/static/vendor/. The console never loads anything from a CDN at run time.
# Usage: scripts/build_web.sh     (needs node + npm; run again after changing web/package.json)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/src/medscrm/web/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp "$ROOT/web/package.json" "$ROOT/web/package-lock.json" "$WORK/"
(cd "$WORK" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
mkdir -p "$OUT"
cp "$WORK/node_modules/htmx.org/dist/htmx.min.js" "$OUT/htmx.min.js"
cp "$WORK/node_modules/echarts/dist/echarts.min.js" "$OUT/echarts.min.js"
for pkg in htmx.org echarts; do
  v=$(node -p "require('$WORK/node_modules/$pkg/package.json').version")
  echo "$pkg $v"
done > "$OUT/VERSIONS.txt"
cp "$WORK/node_modules/echarts/LICENSE" "$OUT/LICENSE.echarts.txt"
cp "$WORK/node_modules/htmx.org/LICENSE" "$OUT/LICENSE.htmx.txt"
echo "vendored into $OUT:"; ls -l "$OUT"
