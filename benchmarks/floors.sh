#!/usr/bin/env bash
# The three rows that miss their goals (rm -f, list --json, image pull), side by side with their
# baselines AND with what tbx cannot do without: the Python interpreter starting, tbx's own
# imports on that path, and for pull the extra registry request the verification needs. As root
# on a provisioned test host; prints markdown rows, JSON in $OUT (issue 29, item 10).
#
#   RUNS=30 bash benchmarks/floors.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-15}
. "$here/lib.sh"
cd /root
REF=$TBX_TEST_INDEX_REF
ARM_IMG=$REF-arm64
PY=$(head -1 "$(readlink -f "$TBX")" | sed 's/^#!//')
"$TBX" image pull "$REF" --arch arm64 --no-tls-verify >/dev/null
rows=()

# rm -f of a container that never ran: podman rm -f, tbx rm -f, and the interpreter with the
# imports of tbx's rm path (its floor: what tbx costs before and after the same podman call)
mk="sh -c 'podman rm -f --ignore tbxb-rm >/dev/null; podman create --name tbxb-rm --label io.github.tbx.managed=true --label io.github.tbx.arch=aarch64 $ARM_IMG true'"
hf floor_rm "$RUNS" --prepare "$mk" "podman rm -f tbxb-rm" "$TBX rm -f tbxb-rm" \
    "$PY -c 'import toolbx_arch.entry, toolbx_arch.commands.rm, toolbx_arch.status, toolbx_arch.naming'"
rows+=("$(row floor_rm 'rm -f: goal <= 1.2x' 0)")
podman rm -f --ignore tbxb-rm >/dev/null

# list --json with 50 containers and 10 images: podman ps, podman images (tbx runs both at once),
# tbx list --json, and the interpreter with the list path's imports
for i in $(seq 1 50); do podman create --name "tbxb-l$i" --label io.github.tbx.managed=true \
    --label io.github.tbx.arch=aarch64 "$ARM_IMG" true >/dev/null; done
hf floor_list "$RUNS" "podman ps -a --format json" "podman images --format json" \
    "sh -c 'podman ps -a --format json >/dev/null & podman images --format json >/dev/null; wait'" "$TBX list --json" \
    "$PY -c 'import toolbx_arch.entry, toolbx_arch.commands.list, json, subprocess'"
rows+=("$(row floor_list 'list --json: goal <= 2.0x podman ps' 0)")
for i in $(seq 1 50); do podman rm -f "tbxb-l$i" >/dev/null; done

# pull: skopeo copy, tbx image pull, and the registry request tbx adds to verify the arch first
ARM_ID=$(podman image inspect --format '{{.Id}}' "$ARM_IMG")
prep="podman rmi -f --ignore $ARM_ID localhost/tbxb-skopeo:arm64"
hf floor_pull 6 --prepare "$prep" \
    "skopeo copy -q --src-tls-verify=false --override-arch arm64 docker://$REF containers-storage:localhost/tbxb-skopeo:arm64" \
    "$TBX image pull $REF --arch arm64 --no-tls-verify" \
    "skopeo inspect --tls-verify=false --override-arch arm64 docker://$REF"
rows+=("$(row floor_pull 'pull: goal <= 1.05x' 0)")
podman rmi -f localhost/tbxb-skopeo:arm64 >/dev/null 2>&1 || true
"$TBX" image pull "$REF" --arch arm64 --no-tls-verify >/dev/null
printf '%s\n' "${rows[@]}"
