#!/usr/bin/env bash
# Build the base Debian rootfs tarball for SWE sandboxes with mmdebstrap (or debootstrap).
# Usage: build_rootfs.sh OUT.tar [SUITE]
# The mirror is taken from apt's own configuration (the only Debian mirror reachable here),
# so nothing is pulled from a container registry.
set -euo pipefail
out=${1:?usage: build_rootfs.sh OUT.tar [SUITE]}
suite=${2:-bookworm}
packages=python3,git,patch,procps,diffutils,less
mirror=${AGENTGYM_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -rhoE '^(URIs:[[:space:]]*|deb[[:space:]]+)(https?://[^[:space:]]+/debian)([[:space:]]|$)' \
             /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
           | grep -oE 'https?://[^[:space:]]+/debian' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
tmp="$out.tmp.$$"
trap 'rm -rf "$tmp" "$tmp.dir"' EXIT
if command -v mmdebstrap >/dev/null; then
  mmdebstrap --quiet --variant=minbase --include="$packages" --mode=root \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --format=tar "$suite" "$tmp" "$mirror"
else
  debootstrap --variant=minbase --include="$packages" "$suite" "$tmp.dir" "$mirror" >/dev/null
  tar -C "$tmp.dir" -cf "$tmp" .
fi
mv "$tmp" "$out"
