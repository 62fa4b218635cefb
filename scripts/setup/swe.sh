#!/usr/bin/env bash
# Set-up for the SWE environment and its sandboxes. Idempotent: quick when done already.
#  - Debian packages: docker.io, bubblewrap, mmdebstrap/debootstrap, util-linux (setpriv, prlimit),
#    mount (a private tmpfs per bwrap sandbox). bwrap's seccomp filter is built at run time
#    (agentgym/sandbox/seccomp.py): no libseccomp needed.
#  - a Docker daemon (started in the background when none answers)
#  - an unprivileged uid for bubblewrap (bubblewrap run as root is no sandbox)
#  - the images (docker) and rootfs (bwrap), built locally from Debian's mirror, never pulled
#  - the sdists of the shipped tasks, in a cache outside the repository
# Env: PYTHON (default: the repo's .venv python, else python3); SWE_SKIP_DOCKER=1 to skip docker.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
log() { echo "[setup/swe] $*"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null || need+=(mmdebstrap)
command -v setpriv >/dev/null && command -v prlimit >/dev/null || need+=(util-linux)
command -v mount >/dev/null && command -v umount >/dev/null || need+=(mount)
command -v git >/dev/null || need+=(git)
if [ "${SWE_SKIP_DOCKER:-0}" != 1 ]; then command -v dockerd >/dev/null || need+=(docker.io); fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The unprivileged uid bubblewrap runs as.
if ! id agentgym-sbx >/dev/null 2>&1; then
  log "creating user agentgym-sbx"
  $SUDO useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin agentgym-sbx
fi

# A Docker daemon.
if [ "${SWE_SKIP_DOCKER:-0}" != 1 ]; then
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd in the background (log: /var/log/agentgym-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/agentgym-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/agentgym-dockerd.log"; exit 1; }
  fi
fi

# Images and rootfs (each step is skipped when its artefact exists).
targets=(--bwrap)
[ "${SWE_SKIP_DOCKER:-0}" = 1 ] || targets+=(--docker)
log "building sandbox images: ${targets[*]}"
$PYTHON -m agentgym.sandbox.images "${targets[@]}"

# Sources of the shipped tasks (and their docker layers).
$PYTHON - "${SWE_SKIP_DOCKER:-0}" <<'EOF'
import sys
from envs.swe.repos import prepare_repo
from envs.swe.tasks import shipped_tasks

repos = sorted({(t.reference["package"], t.reference["version"]) for t in shipped_tasks()})
for package, version in repos:
    repo = prepare_repo(package, version)
    if sys.argv[1] != "1":
        from agentgym.sandbox import images
        from agentgym.sandbox.docker import docker_client
        images.ensure_docker_repo(docker_client(), repo.path.name, repo.path)
print(f"[setup/swe] sources ready: {', '.join(f'{p}=={v}' for p, v in repos)}")
EOF
