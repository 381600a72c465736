#!/usr/bin/env bash
# Side-by-side timings of tbx against podman, skopeo, toolbox and distrobox, with hyperfine.
# Run by hand on a provisioned test host (scripts/test.sh or scripts/provision-test-host.sh), as
# root; not part of CI's pass/fail. Prints a markdown table (min and median, ratio of medians);
# raw hyperfine JSON goes to $OUT (default benchmarks/out).
#
#   bash benchmarks/run.sh            # all rows
#   RUNS=20 bash benchmarks/run.sh    # more runs per command
#
# This script never touches the host's binfmt_misc. The emulated-workload row compares tbx with
# podman running the same static qemu explicitly (the host's qemu entries are disabled on test
# hosts); when the host has an enabled aarch64 entry, `podman run --arch arm64` is measured too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-10}
. "$here/lib.sh"   # the test host's facts, OUT, TBX; hf and row
cd /root
# The peers, measured side by side (Debian packages).
missing=()
for p in hyperfine:hyperfine toolbox:podman-toolbox distrobox:distrobox; do
    command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
done
[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
REF=$TBX_TEST_INDEX_REF
ARM_IMG=$REF-arm64
rows=()

podman rm -f --ignore tbxb-arm tbxb-native tbxb-create tbxb-tb tbxb-db tbxb-rm tbxb-c1 tbxb-t1 >/dev/null 2>&1 || true
for i in $(seq 1 50); do podman rm -f --ignore "tbxb-l$i" >/dev/null 2>&1 || true; done
"$TBX" image pull "$REF" --arch arm64 --no-tls-verify >/dev/null
"$TBX" image pull "$REF" --arch amd64 --no-tls-verify >/dev/null

# 1. start-up (no container involved)
hf startup "$RUNS" "$TBX --help" "$TBX check" "$TBX check --arch aarch64"
rows+=("$(row startup 'goal < 150 ms')")

# 2. run in a running container vs podman exec
"$TBX" create tbxb-arm --arch aarch64 --image "$REF" -y --no-tls-verify >/dev/null
"$TBX" run -c tbxb-arm true
hf run "$RUNS" "podman exec tbxb-arm true" "$TBX run -c tbxb-arm true"
rows+=("$(row run 'goal <= 1.15x' 0)")

# 3. list with 50 tbx containers (labelled for toolbox too, so `toolbox list` lists the same
#    ones) and 10 images tbx stored (names in tbx's index)
for i in $(seq 1 50); do podman create --name "tbxb-l$i" --label io.github.tbx.managed=true \
    --label io.github.tbx.arch=aarch64 --label com.github.containers.toolbox=true "$ARM_IMG" true >/dev/null; done
ARM_ID=$(podman image inspect --format '{{.Id}}' "$ARM_IMG")
for i in $(seq 1 10); do podman tag "$ARM_IMG" "localhost/tbxb-img$i:1-arm64"; done
python3 - "$ARM_ID" <<'PY'
import json, os, sys
p = "/var/lib/tbx/images.json"
d = json.load(open(p)) if os.path.exists(p) else {}
d.update({f"localhost/tbxb-img{i}:1-arm64": sys.argv[1] for i in range(1, 11)})
json.dump(d, open(p, "w"))
PY
list_cmds=("podman ps -a --format json" "$TBX list --json" "$TBX list")
command -v toolbox >/dev/null && list_cmds+=("toolbox list")
hf list "$RUNS" "${list_cmds[@]}"
rows+=("$(row list 'goal: --json <= 2.0x podman ps; list <= 1.0x toolbox list' 0)")

# 3b. run by arch (no container name) vs podman exec, and rm -f vs podman rm -f
for i in $(seq 1 50); do podman rm -f "tbxb-l$i" >/dev/null; done
hf runarch "$RUNS" "podman exec tbxb-arm true" "$TBX run --arch aarch64 true"
rows+=("$(row runarch 'goal <= 1.15x' 0)")
mk="podman create --name tbxb-rm --label io.github.tbx.managed=true --label io.github.tbx.arch=aarch64 $ARM_IMG true"
hf rm "$RUNS" --prepare "$mk" "podman rm -f tbxb-rm" "$TBX rm -f tbxb-rm"
rows+=("$(row rm 'goal <= 1.2x' 0)")

# 3c. enter, in a pty (script(1)): tbx enter's work up to its exec of `podman exec -it`. A shim
#     `podman` first in PATH turns that exec into `podman exec -it tbxb-arm true`, the baseline
#     itself, so the difference is tbx's own (an emulated login shell would add ~2 s of noise).
shim=$(mktemp -d)
printf '#!/bin/sh\nexec %s exec -it tbxb-arm true\n' "$(command -v podman)" >"$shim/podman"
chmod +x "$shim/podman"
hf enter "$RUNS" "script -qec 'podman exec -it tbxb-arm true' /dev/null </dev/null" \
    "script -qec 'PATH=$shim:\$PATH $TBX enter tbxb-arm' /dev/null </dev/null"
rows+=("$(row enter 'goal <= 1.15x' 0)")
rm -rf "$shim"

# 3d. create from a local image, as root (overlay): tbx vs toolbox, the same arm64 image
#     (toolbox needs a D-Bus system socket, started here when there is none; so does step 4)
mkdir -p /run/dbus
[ -S /run/dbus/system_bus_socket ] || dbus-daemon --system --fork
podman tag "$ARM_IMG" localhost/tbxb-armlocal:1
prep="podman rm -f --ignore tbxb-c1 tbxb-t1"
# (tbx is given the same name as toolbox, and finds the arch-suffixed name tbx stores it under)
cr=("$TBX create tbxb-c1 --arch aarch64 --image localhost/tbxb-armlocal:1")
podman tag "$ARM_IMG" localhost/tbxb-armlocal:1-arm64
command -v toolbox >/dev/null && cr+=("toolbox create -i localhost/tbxb-armlocal:1 tbxb-t1")
hf create_root "$RUNS" --prepare "$prep" "${cr[@]}"
rows+=("$(row create_root 'goal <= 1.0x toolbox (rootful, overlay)' 1)")
$prep >/dev/null 2>&1 || true
podman rmi localhost/tbxb-armlocal:1 localhost/tbxb-armlocal:1-arm64 >/dev/null 2>&1 || true
for i in $(seq 1 10); do podman rmi "localhost/tbxb-img$i:1-arm64" >/dev/null 2>&1 || true; done

# 4. create from a local image vs toolbox and distrobox, all rootless as the test user (distrobox
#    refuses real root; toolbox needs a D-Bus system socket, started here when there is none).
#    A native image: the peers cannot create foreign containers. The image is pulled first.
U="runuser -u $TBX_TEST_USER -- env -i -C /home/$TBX_TEST_USER HOME=/home/$TBX_TEST_USER USER=$TBX_TEST_USER SHELL=/bin/bash PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR=/run/user/$TBX_TEST_UID"
$U "$TBX" image pull "$REF" --arch amd64 --no-tls-verify >/dev/null
$U podman tag "$REF" localhost/tbxb-local:1
create_cmds=("$U $TBX create tbxb-create --arch x86_64 --image localhost/tbxb-local:1")
prep="$U podman rm -f --ignore tbxb-create tbxb-tb tbxb-db"
if command -v toolbox >/dev/null; then create_cmds+=("$U toolbox create --image localhost/tbxb-local:1 tbxb-tb"); fi
if command -v distrobox >/dev/null; then
    create_cmds+=("$U distrobox create --yes --no-entry --image localhost/tbxb-local:1 --name tbxb-db")
fi
hyperfine --style none --runs 5 --prepare "$prep" --export-json "$OUT/create.json" "${create_cmds[@]}" >/dev/null ||
    echo "create benchmark: some peer failed; see: hyperfine ${create_cmds[*]}" >&2
[ -s "$OUT/create.json" ] && rows+=("$(row create 'goal <= 1.0x vs peers' 1)")
$prep >/dev/null 2>&1 || true
$U podman rmi localhost/tbxb-local:1 >/dev/null 2>&1 || true

# 5. emulated workload: gzip 50 MB inside arm64
head -c 50000000 /dev/urandom >/root/tbxb-50M
wl="gzip -c /root/tbxb-50M > /dev/null"
# podman with the same static qemu given explicitly (no binfmt at all): every foreign exec via /q
emu=(podman run --rm -v /root:/root -v /usr/bin/qemu-aarch64-static:/q:ro --entrypoint /q "$ARM_IMG"
     /bin/sh -c "/q /bin/$wl")
cmds=("$TBX run -c tbxb-arm sh -c '$wl'" "podman exec tbxb-arm sh -c '$wl'" "$(printf '%q ' "${emu[@]}")")
if grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    cmds+=("podman run --rm --arch arm64 -v /root:/root $ARM_IMG sh -c '$wl'")
fi
hyperfine --style none --runs 3 --export-json "$OUT/emulated.json" "${cmds[@]}" >/dev/null
rows+=("$(row emulated 'goal 1.0x +- 5%' 2)")
rm -f /root/tbxb-50M

# 6. pull vs skopeo copy: every run starts with no copy of the image in storage (removed by ID,
#    all its names), so both really fetch and store its layers
podman rm -f --ignore tbxb-arm >/dev/null
ARM_ID=$(podman image inspect --format '{{.Id}}' "$ARM_IMG")
prep="podman rmi -f --ignore $ARM_ID"
hyperfine --style none --runs 5 --prepare "$prep" --export-json "$OUT/pull.json" \
    "skopeo copy -q --src-tls-verify=false --override-arch arm64 docker://$REF containers-storage:localhost/tbxb-skopeo:arm64" \
    "$TBX image pull $REF --arch arm64 --no-tls-verify" >/dev/null
rows+=("$(row pull 'goal <= 1.05x' 0)")
podman rmi -f localhost/tbxb-skopeo:arm64 >/dev/null 2>&1 || true

# 7. a 2-arch build vs podman build --manifest with the host's qemu entry enabled (build.sh)
rows+=("$(TBX=$TBX OUT=$OUT bash "$here/build.sh" --row)")

# 8. a run on a podman connection's machine vs podman's own remote exec (node.sh, the test node)
rows+=("$(TBX=$TBX OUT=$OUT bash "$here/node.sh" --row)")

echo "| command | min ms | median ms | ratio (median) | goal |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
