#!/bin/bash
# Rendered by speedia-image from the host spec {{.Name}}. KIWI runs it in the new
# root after the packages and the overlay (root/) are in place.
set -euxo pipefail

echo {{.HostnameQ}} > /etc/hostname

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
{{.AptSources}}SOURCES

{{- range .Users}}
{{- if .Keys}}
install -d -m 0700 {{.HomeQ}}/.ssh
cat > {{.HomeQ}}/.ssh/authorized_keys <<'KEYS'
{{.Keys}}KEYS
chmod 0600 {{.HomeQ}}/.ssh/authorized_keys
chown -R {{.NameQ}}: {{.HomeQ}}/.ssh
{{- end}}
{{- end}}

apt-get clean
rm -rf /var/lib/apt/lists/*
