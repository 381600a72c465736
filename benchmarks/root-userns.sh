#!/usr/bin/env bash
# What root's default layout costs (issue 27): a root container whose root is a subordinate id
# (--userns auto, the default now) against one whose root is host root (--userns identity, the
# default before) and toolbox, side by side: create from a local arm64 image, then the first
# `tbx run` (start + registration + init), then a run in the started container. As root, on a
# provisioned test host. Prints markdown rows; JSON in $OUT.
#
#   RUNS=15 bash benchmarks/root-userns.sh [--row]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-10}
. "$here/lib.sh"
cd /root
REF=$TBX_TEST_INDEX_REF
"$TBX" image pull "$REF" --arch arm64 --no-tls-verify >/dev/null
podman tag "$REF-arm64" localhost/tbxb-armlocal:1 localhost/tbxb-armlocal:1-arm64
mkdir -p /run/dbus
[ -S /run/dbus/system_bus_socket ] || dbus-daemon --system --fork
prep="podman rm -f --ignore tbxb-auto tbxb-id tbxb-tb"
cmds=("$TBX create tbxb-auto --arch aarch64 --image localhost/tbxb-armlocal:1"
      "$TBX create tbxb-id --arch aarch64 --image localhost/tbxb-armlocal:1 --userns identity")
command -v toolbox >/dev/null && cmds+=("toolbox create -i localhost/tbxb-armlocal:1 tbxb-tb")
hf root_userns_create "$RUNS" --prepare "$prep" "${cmds[@]}"
rows=("$(row root_userns_create 'cost of auto: create' 1)")
# the first run: start, register, wait for the init (the container stopped before each run)
"$TBX" create tbxb-auto --arch aarch64 --image localhost/tbxb-armlocal:1 >/dev/null 2>&1 || true
"$TBX" create tbxb-id --arch aarch64 --image localhost/tbxb-armlocal:1 --userns identity >/dev/null 2>&1 || true
hf root_userns_start "$RUNS" --prepare "podman stop -t 0 tbxb-auto tbxb-id" \
    "$TBX run -c tbxb-auto true" "$TBX run -c tbxb-id true"
rows+=("$(row root_userns_start 'cost of auto: first run (start)' 1)")
"$TBX" run -c tbxb-auto true && "$TBX" run -c tbxb-id true
hf root_userns_run "$RUNS" "$TBX run -c tbxb-auto true" "$TBX run -c tbxb-id true"
rows+=("$(row root_userns_run 'cost of auto: run in a running container' 1)")
podman rm -f --ignore tbxb-auto tbxb-id tbxb-tb >/dev/null
podman rmi localhost/tbxb-armlocal:1 localhost/tbxb-armlocal:1-arm64 >/dev/null 2>&1 || true
printf '%s\n' "${rows[@]}"
