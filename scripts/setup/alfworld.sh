#!/usr/bin/env bash
# Set-up for the ALFWorld environment. Idempotent: quick when everything is there already.
#  - alfworld 0.4.2 and textworld 1.7.0 with its PDDL engine. Two of textworld's requirements
#    have no wheels on PyPI and are compiled here once (about 4 minutes on 2 cores), into a
#    wheel cache ($AGENTGYM_CACHE/wheels/<python>-<machine>, default ~/.cache/agentgym), so that
#    reruns and new virtualenvs install in seconds:
#      fast-downward-textworld 20.6.4 (C++, CMake; the planner library behind PddlEnv)
#      jericho 3.3.1 (C; textworld imports it for Z-machine games, which ALFWorld does not use)
#  - installed without their dependency resolution: jericho would pull spaCy (hundreds of MB,
#    only used by jericho's own text utilities) and alfworld's extras pull torch/vision stacks.
#    textworld's real requirements are listed below and installed normally.
#  - a smoke test: alfworld's expert wins one shipped game through the engine.
# Needs a C/C++ compiler and make (Debian: build-essential; installed with apt when missing and
# running as root). Env: PYTHON (default: the repo's .venv python, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
log() { echo "[setup/alfworld] $*"; }
PIN_ALFWORLD=0.4.2
PIN_TEXTWORLD=1.7.0
PIN_FASTDOWNWARD=20.6.4
PIN_JERICHO=3.3.1

installed() {
  "$PY" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(0 if all(version(n) == v for n, v in zip(sys.argv[1::2], sys.argv[2::2])) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

if installed alfworld "$PIN_ALFWORLD" textworld "$PIN_TEXTWORLD" fast-downward-textworld "$PIN_FASTDOWNWARD" \
    jericho "$PIN_JERICHO" tatsu 5.8.3; then
  log "alfworld $PIN_ALFWORLD and textworld $PIN_TEXTWORLD already installed"
else
  if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing build-essential (a C++ compiler for fast-downward)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
    else
      log "error: g++ and make are needed to build fast-downward; install build-essential" >&2
      exit 1
    fi
  fi
  tag=$("$PY" -c "import platform, sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}')")
  wheels="${AGENTGYM_CACHE:-$HOME/.cache/agentgym}/wheels/$tag"
  mkdir -p "$wheels"
  # The sdists run `python build.py` / `make`; pip's isolated build must find a working `python`
  # (a pyenv shim there can resolve to an interpreter without the standard library).
  pybin=$(cd "$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")" && pwd)
  for spec in "fast-downward-textworld==$PIN_FASTDOWNWARD:fast_downward_textworld-$PIN_FASTDOWNWARD-" \
              "jericho==$PIN_JERICHO:jericho-$PIN_JERICHO-"; do
    req=${spec%%:*}; prefix=${spec#*:}
    if ls "$wheels/$prefix"*.whl >/dev/null 2>&1; then
      log "cached wheel for $req"
    else
      log "building $req (compiles native code; a few minutes on 2 cores)"
      start=$(date +%s)
      PATH="$pybin:$PATH" "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps "$req" -w "$wheels"
      log "built $req in $(( $(date +%s) - start )) s"
    fi
  done
  log "pip install textworld's requirements"
  "$PY" -m pip install --quiet --disable-pip-version-check -c <(echo "torch==$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.13.0)") \
    "tatsu==5.8.3" "hashids>=1.2.0" "mementos>=1.3.1" more_itertools "networkx>=2" termcolor prompt_toolkit \
    "tqdm>=4.17.1" "numpy>=1.14.5"
  log "pip install alfworld $PIN_ALFWORLD, textworld $PIN_TEXTWORLD (+ the cached native wheels)"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --find-links "$wheels" \
    "alfworld==$PIN_ALFWORLD" "textworld==$PIN_TEXTWORLD" "fast-downward-textworld==$PIN_FASTDOWNWARD" \
    "jericho==$PIN_JERICHO"
fi

"$PY" - <<'EOF'
import time

import agentgym

start = time.perf_counter()
env = agentgym.make("alfworld-seen/v0", split="test", task_types=["examine_in_light"])
env.reset(seed=12)
while not env.done:
    _, _, _, _, info = env.step(env.oracle_action())
env.close()
if not info.get("success"):
    raise SystemExit("[setup/alfworld] smoke test failed: the expert did not win a shipped game")
print(f"[setup/alfworld] smoke test: the expert won {env.task.id} in {env.turn} steps "
      f"({time.perf_counter() - start:.1f} s)")
EOF
