#!/usr/bin/env bash
# Install tbx on a Debian 12 host: runtime packages, podman settings, and tbx itself in a
# virtual environment (/opt/tbx), linked as /usr/local/bin/tbx. Idempotent; run as root.
#   TBX_EXTRAS=test   also installs the test dependencies (used by scripts/test.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
venv=${TBX_VENV:-/opt/tbx}
[ "$(id -u)" = 0 ] || { echo "install.sh must run as root (it installs Debian packages)" >&2; exit 1; }
bash "$here/install-host-packages.sh"
bash "$here/configure-podman.sh"
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
spec="$src"
[ -n "${TBX_EXTRAS:-}" ] && spec="$src[$TBX_EXTRAS]"
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$src" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/pip" install -q --disable-pip-version-check "$spec" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/tbx" --version >/dev/null
ln -sf "$venv/bin/tbx" /usr/local/bin/tbx
echo "[install] tbx installed: $(command -v tbx) ($("$venv/bin/tbx" --version))" >&2
