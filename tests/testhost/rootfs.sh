#!/bin/sh
# Builds (or reuses) the Debian bookworm root filesystem of the test host.
# Usage: rootfs.sh CACHE_DIR  -> prints the path of the cached tarball.
# The cache key is a hash of this script, so a changed recipe rebuilds it.
set -eu
cache=${1:?usage: rootfs.sh CACHE_DIR}
key=$(sha256sum "$0" | cut -c1-16)
out="$cache/rootfs-bookworm-$key.tar"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
pkgs=systemd,systemd-sysv,dbus,libpam-systemd,btrfs-progs,snapper,apt,ca-certificates
# The build machine's own apt sources name the Debian mirror it can reach.
# The hooks' "$1" is mmdebstrap's (the root being built), not this script's.
# shellcheck disable=SC2016
mmdebstrap --quiet --format=tar --variant=minbase --include="$pkgs" \
  --customize-hook='rm -f "$1"/etc/hostname "$1"/etc/machine-id; : > "$1"/etc/machine-id' \
  bookworm "$out.tmp" - < /etc/apt/sources.list.d/debian.sources >&2 \
  || mmdebstrap --quiet --format=tar --variant=minbase --include="$pkgs" \
       --customize-hook='rm -f "$1"/etc/hostname; : > "$1"/etc/machine-id' bookworm "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "$out"
