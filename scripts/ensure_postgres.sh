#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 (trust auth), installing it if needed.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ready; then echo "== PostgreSQL is up on 127.0.0.1:5432"; exit 0; fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "== installing PostgreSQL from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
conf="/etc/postgresql/$ver/main"
# trust auth on loopback for the test user, as the tests expect
if ! grep -q "medscrm-ci" "$conf/pg_hba.conf" 2>/dev/null; then
  sed -i '1i host all all 127.0.0.1/32 trust # medscrm-ci\nhost all all ::1/128 trust # medscrm-ci\nlocal all all trust # medscrm-ci' "$conf/pg_hba.conf"
fi
echo "== starting PostgreSQL $ver"
pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
for _ in $(seq 1 30); do ready && { echo "== PostgreSQL is up"; exit 0; }; sleep 1; done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
