#!/bin/sh
# Turn the base rootfs into the SWE toolchain: test tools from local wheels, the
# unprivileged `agent` user, and the work dir. Runs inside `docker build --network none`
# and, for the bubblewrap rootfs, inside a chroot: the same recipe for both backends.
# Usage: install_toolchain.sh WHEEL_DIR
set -eu
wheels=${1:?usage: install_toolchain.sh WHEEL_DIR}
pipwhl=$(ls "$wheels"/pip-*.whl | head -n1)
PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 python3 "$pipwhl/pip" install --quiet \
  --no-index --find-links "$wheels" --break-system-packages --root-user-action=ignore \
  --no-warn-script-location $(cat "$wheels/requirements.txt")
id agent >/dev/null 2>&1 || useradd --uid 1000 --user-group --home-dir /tmp --no-create-home --shell /bin/bash agent
mkdir -p /work /var/lib/agentgym/snap
chown agent:agent /work
chmod 0755 /var/lib/agentgym
git config --system user.name agent
git config --system user.email agent@sandbox.invalid
git config --system safe.directory '*'
git config --system init.defaultBranch main
git config --system advice.detachedHead false
rm -rf /root/.cache /var/cache/apt/archives/*.deb
