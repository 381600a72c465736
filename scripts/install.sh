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
# man pages and shell completions, from the package's data
mkdir -p /usr/local/share/man/man1 /usr/share/bash-completion/completions /usr/share/zsh/vendor-completions \
    /usr/share/fish/vendor_completions.d
for page in "$venv"/share/man/man1/tbx*.1; do [ -e "$page" ] && ln -sf "$page" /usr/local/share/man/man1/; done
ln -sf "$venv/share/bash-completion/completions/tbx" /usr/share/bash-completion/completions/tbx
ln -sf "$venv/share/zsh/site-functions/_tbx" /usr/share/zsh/vendor-completions/_tbx
ln -sf "$venv/share/fish/vendor_completions.d/tbx.fish" /usr/share/fish/vendor_completions.d/tbx.fish
echo "[install] tbx installed: $(command -v tbx) ($("$venv/bin/tbx" --version))" >&2
