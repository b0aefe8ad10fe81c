#!/usr/bin/env bash
# What a user gets from `pip install medscrm`: build the wheel, install it into a fresh virtual
# environment WITHOUT uv.lock (pip takes the newest release of every dependency that
# pyproject.toml allows, e.g. pandas 3 while the lock holds pandas 2), then run `medscrm demo` and
# `medscrm resolve` from an empty directory on the embedded DuckDB default. Fails if either fails.
# Called by scripts/test.sh after pytest; runs on its own too: ./scripts/check_wheel.sh
#   MEDSCRM_WHEEL_CHECK_HCPS   HCPs in the demo tenant (default 200; `medscrm demo` defaults to 2000)
#   PYTHON                     interpreter for the fresh virtual environment (default python3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
HCPS="${MEDSCRM_WHEEL_CHECK_HCPS:-200}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/medscrm-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS
step() { echo "== wheel check: $* ($((SECONDS - start)) s)"; }

step "building the wheel (uv build --wheel)"
uv build --wheel --quiet --out-dir "$WORK/dist"
wheel=("$WORK"/dist/medscrm-*.whl)

step "installing ${wheel[0]##*/} into a fresh venv with pip (no lock: newest allowed versions)"
if "$PYTHON" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  "$PYTHON" -m venv "$WORK/venv"
else  # no Python >= 3.11 with venv here: uv makes the environment (with pip), pip still installs
  uv venv --quiet --seed --python ">=3.11" "$WORK/venv"
fi
"$WORK/venv/bin/python" -m pip install "${wheel[0]}" >"$WORK/pip.log" 2>&1 || {
  cat "$WORK/pip.log"
  echo "wheel check FAILED: pip could not install the wheel" >&2
  exit 1
}
"$WORK/venv/bin/python" - <<'EOF'
from importlib.metadata import version
print("   installed:", ", ".join(f"{d} {version(d)}" for d in ("pandas", "numpy", "splink", "duckdb", "sqlalchemy", "fastapi")))
EOF

# run from empty directories, outside the checkout, with no database configured: the state goes
# to ./medscrm.duckdb there, as for a user trying it out
mkdir "$WORK/demo" "$WORK/resolve"
run() { (cd "$1" && shift && env -u MEDSCRM_DATABASE_URL -u VIRTUAL_ENV "$WORK/venv/bin/medscrm" "$@"); }

step "medscrm demo --hcps $HCPS (empty directory, embedded DuckDB)"
run "$WORK/demo" demo --hcps "$HCPS" >"$WORK/demo.log" 2>&1 || {
  cat "$WORK/demo.log"
  echo "wheel check FAILED: medscrm demo (installed from the wheel) exited non-zero" >&2
  exit 1
}
tail -n 5 "$WORK/demo.log"
test -s "$WORK/demo/medscrm.duckdb" || { echo "wheel check FAILED: demo left no ./medscrm.duckdb" >&2; exit 1; }

step "medscrm synth + medscrm resolve records.csv --output out.csv"
run "$WORK/resolve" synth --hcps 100 --out synth >/dev/null
cp "$WORK/resolve/synth/all_records.csv" "$WORK/resolve/records.csv"
run "$WORK/resolve" resolve records.csv --output out.csv >"$WORK/resolve.log" 2>&1 || {
  cat "$WORK/resolve.log"
  echo "wheel check FAILED: medscrm resolve (installed from the wheel) exited non-zero" >&2
  exit 1
}
"$WORK/venv/bin/python" - "$WORK/resolve/records.csv" "$WORK/resolve/out.csv" <<'EOF'
import csv, sys
with open(sys.argv[1], encoding="utf-8-sig") as f:
    records = sum(1 for _ in csv.DictReader(f))
with open(sys.argv[2], encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
persons = {r["person_id"] for r in rows}
assert rows and len(rows) == records, f"out.csv has {len(rows)} rows for {records} records"
assert all(r["person_id"] for r in rows), "a record without a person_id"
assert len(persons) < len(rows), "no duplicates merged"
print(f"   resolve: {records} records -> {len(persons)} persons")
EOF
step "passed"
