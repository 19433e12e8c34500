#!/usr/bin/env bash
# Makes sure headless Chromium is there for the status-page test
# (test/page.test.ts drives it with playwright-core, which downloads no browser):
# installs Debian's chromium package when /usr/bin/chromium is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-browser: installing chromium (Debian package)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium
fi
"$CHROMIUM" --version 2>/dev/null
