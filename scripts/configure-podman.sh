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

# podman's CNI backend creates this empty lock file the first time a container gets a network of
# its own; made here, so that the suite's "/etc unchanged" check starts from the host as podman
# leaves it on its first use, not from a host podman has never run a container on.
if [ -d /etc/cni/net.d ] && [ ! -e /etc/cni/net.d/cni.lock ]; then
    install -m 644 /dev/null /etc/cni/net.d/cni.lock
fi
