#!/usr/bin/env bash
# Podman settings for hosts without systemd and without CAP_SYS_RESOURCE (measured in
# shared/notes/host-lab.md): runc instead of crun, and ulimits within the hard limit.
# Written as a drop-in so the distribution's containers.conf stays untouched. Root only.
set -euo pipefail
conf=/etc/containers/containers.conf.d/50-tbx.conf
mkdir -p "$(dirname "$conf")"
cat >"$conf.tmp" <<'CONF'
# written by tbx scripts/configure-podman.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
mv "$conf.tmp" "$conf"
