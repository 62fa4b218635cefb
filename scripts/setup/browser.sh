#!/usr/bin/env bash
# Set-up for everything that drives a real browser (the WebShop browser mode, `agentgym view`'s
# tests): Debian's chromium and the playwright Python package. Playwright is always launched with
# executable_path=/usr/bin/chromium; `playwright install` downloads browsers and is never run.
# Idempotent: quick when both are there. Env: PYTHON (default: the repo's .venv python).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
log() { echo "[setup/browser] $*"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v chromium >/dev/null; then
  log "installing chromium (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if ! "$PY" -c "import playwright" 2>/dev/null; then
  log "pip install playwright"
  "$PY" -m pip install --quiet --disable-pip-version-check "playwright>=1.45"
fi
log "$(chromium --version 2>/dev/null || echo 'chromium: not found')"
