#!/bin/bash
# Rendered by speedia-image from the host spec debian-web. KIWI runs it in the new
# root after the packages and the overlay (root/) are in place.
set -euxo pipefail

echo 'web1' > /etc/hostname

# Each host makes its own SSH host keys and machine ID at first boot
# (speedia-firstboot.service, systemd).
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

# The engine manages root snapshots; snapper only lists them.
systemctl mask snapper-boot.timer snapper-timeline.timer snapper-cleanup.timer
systemctl enable systemd-networkd.service systemd-resolved.service ssh.service
journalctl --update-catalog || true

# The host's update source is the one it was built from.
rm -f /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list
cat > /etc/apt/sources.list <<'SOURCES'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
install -d -m 0700 '/root'/.ssh
cat > '/root'/.ssh/authorized_keys <<'KEYS'
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5ShBeoTS2H8hE60KszalkSnLnA64LDcXcYsZUeSDqD admin@example.com (placeholder: replace with your key)
KEYS
chmod 0600 '/root'/.ssh/authorized_keys
chown -R 'root': '/root'/.ssh

apt-get clean
rm -rf /var/lib/apt/lists/*
