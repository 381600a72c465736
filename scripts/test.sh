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

# The host's qemu binfmt_misc entries as they are now, before anything is installed: provisioning
# disables them (the tests prove tbx needs none) and Debian's qemu-user-static package adds
# them. On exit, even a failed or interrupted one, each entry gets its state back: enabled stays
# enabled, disabled stays disabled, and an entry that was not there is removed again.
binfmt=/proc/sys/fs/binfmt_misc
snapshot=$(mktemp)
snapshot_binfmt() { # -> "name enabled|disabled" lines
    mountpoint -q "$binfmt" || return 0
    local e
    for e in "$binfmt"/qemu-*; do [ -e "$e" ] && echo "$(basename "$e") $(head -1 "$e")"; done
    return 0
}
restore_binfmt() {
    mountpoint -q "$binfmt" || return 0
    local e n was
    for e in "$binfmt"/qemu-*; do
        [ -e "$e" ] || continue
        n=$(basename "$e")
        was=$(awk -v n="$n" '$1 == n {print $2}' "$snapshot")
        case "$was" in
            enabled) echo 1 >"$e" ;;
            disabled) echo 0 >"$e" ;;
            *) echo -1 >"$e" ;;
        esac
    done
    if [ "$(snapshot_binfmt)" = "$(cat "$snapshot")" ]; then
        echo "[test] the host's qemu binfmt_misc entries are as they were before the run" >&2
    else
        echo "[test] WARNING: the host's qemu binfmt_misc entries differ from before the run:" >&2
        diff <(cat "$snapshot") <(snapshot_binfmt) >&2
        return 1
    fi
}
snapshot_binfmt >"$snapshot"
restored=0
# The ssh node of the connection tests is stopped and emptied by them; on any exit, again.
trap '[ "$restored" = 1 ] || restore_binfmt; rm -f "$snapshot"; bash "$here/test-node.sh" down >/dev/null 2>&1 || true' EXIT

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
restored=1
if ! restore_binfmt; then
    [ "$rc" = 0 ] && rc=1
fi
exit "$rc"
