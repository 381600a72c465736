#!/usr/bin/env bash
# Run the whole test suite on this machine (Debian 12, as root): installs tbx and its test
# dependencies (scripts/install.sh), provisions the test host (scripts/provision-test-host.sh:
# packages, podman settings, test user, debootstrap images, local registries), then runs pytest
# on tests/unit and tests/system. Extra arguments go to pytest.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
venv=${TBX_VENV:-/opt/tbx}
start=$(date +%s)

TBX_EXTRAS=test bash "$here/install.sh" || exit 1
bash "$here/provision-test-host.sh" || exit 1
echo "[test] provisioned in $(( $(date +%s) - start )) s" >&2

cd "$src"
# Test the installed package, not the checkout: the rootless test user runs that same copy.
TBX_BIN="$venv/bin/tbx" "$venv/bin/python" -m pytest -p no:cacheprovider "${@:-tests}"
rc=$?
if [ "$rc" = 5 ]; then
    echo "[test] FAILED: pytest collected no tests; a suite that runs nothing is broken" >&2
    exit 1
fi
echo "[test] finished in $(( $(date +%s) - start )) s with pytest exit code $rc" >&2
exit "$rc"
