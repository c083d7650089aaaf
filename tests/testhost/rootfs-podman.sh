#!/bin/sh
# Builds (or reuses) the test host's root filesystem with rootful Podman 4.3
# (runc, conmon, CNI plugins, catatonit) and busybox-static for test images.
# Usage: rootfs-podman.sh CACHE_DIR  -> prints the path of the cached tarball.
# Separate from rootfs.sh so hosts without Podman keep their smaller rootfs.
set -eu
cache=${1:?usage: rootfs-podman.sh CACHE_DIR}
key=$(sha256sum "$0" | cut -c1-16)
out="$cache/rootfs-bookworm-podman-$key.tar"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
pkgs=systemd,systemd-sysv,dbus,libpam-systemd,btrfs-progs,snapper,apt,ca-certificates
pkgs=$pkgs,podman,runc,conmon,containernetworking-plugins,catatonit,busybox-static
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
