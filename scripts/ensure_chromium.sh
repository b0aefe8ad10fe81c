#!/usr/bin/env bash
# Debian's Chromium (driven by Playwright with executablePath) for the console's end-to-end tests,
# and CJK fonts for readable screenshots. Installed from Debian's packages when missing.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
installed() { dpkg -s "$1" >/dev/null 2>&1; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian package)"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if ! installed fonts-noto-cjk; then
  echo "== installing fonts-noto-cjk (Debian package; only screenshots need it)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-noto-cjk >/dev/null \
    || echo "   (could not install fonts-noto-cjk: screenshots will lack CJK glyphs; tests are unaffected)"
fi
