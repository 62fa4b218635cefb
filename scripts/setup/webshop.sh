#!/usr/bin/env bash
# Set-up for the WebShop environment: its reward's packages (rapidfuzz, and textblob, whose wheel
# ships the English part-of-speech tagger the type reward uses; pinned). The browser mode also needs
# scripts/setup/browser.sh (Debian chromium + playwright). The shipped catalog is in the repository;
# the official data files are never downloaded here (docs/webshop.md says how to use them).
# Idempotent: quick when everything is there. Env: PYTHON (default: the repo's .venv python).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
log() { echo "[setup/webshop] $*"; }

if ! "$PY" -c "import rapidfuzz, importlib.metadata as m; assert m.version('textblob') == '0.20.1'" 2>/dev/null; then
  log "pip install rapidfuzz textblob==0.20.1"
  "$PY" -m pip install --quiet --disable-pip-version-check "rapidfuzz>=3,<4" "textblob==0.20.1" \
    -c <(echo "torch==$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.13.0)")
fi
"$PY" -c "from envs.webshop.nouns import title_nouns; assert 'socks' in title_nouns('Wool Socks')" \
  && log "ready: $("$PY" -c 'import importlib.metadata as m; print("textblob", m.version("textblob"), "rapidfuzz", m.version("rapidfuzz"))')"
