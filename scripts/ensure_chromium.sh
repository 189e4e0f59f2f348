#!/usr/bin/env bash
# `make test`: make sure Debian's Chromium is there for the dashboard's end-to-end tests, installing it if not.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "The dashboard's browser tests need Debian's Chromium at $CHROMIUM, and installing it needs root:" >&2
  echo "  sudo apt-get install chromium" >&2
  exit 1
fi
echo "Installing Debian's chromium for the dashboard's browser tests (apt-get)..."
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "apt-get finished but $CHROMIUM is still missing" >&2; exit 1; }
