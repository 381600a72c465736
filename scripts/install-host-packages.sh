#!/usr/bin/env bash
# Install Debian packages tbx needs at run time, plus any extra names given. Idempotent; root.
set -euo pipefail
pkgs=(podman skopeo qemu-user-static binfmt-support runc uidmap python3-venv openssh-client "$@")
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "[install] apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
