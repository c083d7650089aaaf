#!/bin/sh
# Runs once, as root, on the host's first boot (see docs/image.md).
# Keep it idempotent: a failed first boot may run it again.
set -eu
cat > /etc/motd <<'MOTD'
This is a Speedia host: the OS is read-only and updates itself.
"speedia-update status" shows the update state.
MOTD
