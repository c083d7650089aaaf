#!/bin/bash
# Rendered by speedia-image from the host spec {{.Name}}. KIWI runs it in the new
# root after the packages and the overlay (root/) are in place.
set -euxo pipefail

echo {{.HostnameQ}} > /etc/hostname

# The engine drives transactional-update; rebootmgr would reboot on its own.
systemctl disable rebootmgr.service transactional-update.timer || true
systemctl enable sshd.service speedia-updated.service

{{- range .Users}}
{{- if .Keys}}
install -d -m 0700 {{.HomeQ}}/.ssh
cat > {{.HomeQ}}/.ssh/authorized_keys <<'KEYS'
{{.Keys}}KEYS
chmod 0600 {{.HomeQ}}/.ssh/authorized_keys
chown -R {{.NameQ}}: {{.HomeQ}}/.ssh
{{- end}}
{{- end}}
