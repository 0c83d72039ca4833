#!/usr/bin/env bash
# What the console tests need: Debian's chromium and the Python playwright package (driver only).
# Idempotent. Never runs `playwright install`: that downloads a browser build, which cannot be fetched here;
# the tests launch /usr/bin/chromium instead. Usage: tests/e2e/console/install_browser.sh [path/to/python]
set -euo pipefail
PYTHON="${1:-.venv/bin/python}"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser: chromium missing and not root; the console tests will be skipped" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y chromium \
      || { apt-get update && apt-get install -y chromium; } \
      || echo "install_browser: could not install chromium; the console tests will be skipped" >&2
  fi
fi

if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet playwright \
    || echo "install_browser: could not install playwright; the console tests will be skipped" >&2
fi
