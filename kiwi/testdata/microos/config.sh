#!/bin/bash
# Rendered by speedia-image from the host spec microos-containers. KIWI runs it in the new
# root after the packages and the overlay (root/) are in place.
set -euxo pipefail

echo 'pod1' > /etc/hostname

# The engine drives transactional-update; rebootmgr would reboot on its own.
systemctl disable rebootmgr.service transactional-update.timer || true
systemctl enable sshd.service speedia-updated.service
install -d -m 0700 '/root'/.ssh
cat > '/root'/.ssh/authorized_keys <<'KEYS'
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5ShBeoTS2H8hE60KszalkSnLnA64LDcXcYsZUeSDqD admin@example.com (placeholder: replace with your key)
KEYS
chmod 0600 '/root'/.ssh/authorized_keys
chown -R 'root': '/root'/.ssh
