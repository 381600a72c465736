#!/usr/bin/env bash
# `tbx build` side by side with what users do today, as root on a provisioned test host:
# `podman build --platform linux/amd64,linux/arm64 --manifest`, which needs the host's qemu
# entry enabled while it runs, vs `tbx build --arch amd64,arm64` with the host's entry disabled
# (tbx uses its private registration). Each run starts with no built image, so no layer cache;
# the base image of both platforms stays in storage for both. The host entry is restored to its state on exit.
#   bash benchmarks/build.sh          # prints the markdown table
#   bash benchmarks/build.sh --row    # only the rows (run.sh collects them)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-5}
. "$here/lib.sh"   # the test host's facts, OUT, TBX; hf and row
cd /tmp  # readable by the rootless user too
bctx=$(mktemp -d); chmod 755 "$bctx"
printf 'FROM %s\nRUN uname -m > /arch && cat /bin/busybox > /bb\n' "$TBX_TEST_BUSYBOX_REF" >"$bctx/Containerfile"
host_entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
was=$(head -1 "$host_entry" 2>/dev/null || echo missing)
restore() { if [ "$was" = enabled ]; then echo 1 >"$host_entry"; elif [ "$was" = disabled ]; then echo 0 >"$host_entry"; fi; }
trap restore EXIT
user=${TBX_TEST_USER:-tbxtest}
as_user="runuser -u $user -- env -i HOME=/home/$user USER=$user PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR=/run/user/$(id -u "$user")"
clean() { # prefix for podman ("" for root, or $as_user)
    echo "cd /; $1 podman manifest rm localhost/tbxb-pm:1 >/dev/null 2>&1; $1 podman manifest rm localhost/tbxb-tb:1 >/dev/null 2>&1; $1 podman rmi -f localhost/tbxb-pm:1 localhost/tbxb-tb:1-amd64 localhost/tbxb-tb:1-arm64 >/dev/null 2>&1; $1 podman image prune -f >/dev/null 2>&1; true"
}
hold_bases() { # prefix, then tag|untag: both platforms' base images stay stored (a prune between runs
    # would otherwise drop whichever the FROM name no longer points at, and each run would copy its blobs)
    for p in amd64 arm64; do
        if [ "$2" = tag ]; then
            $1 podman pull -q --tls-verify=false --platform "linux/$p" "$TBX_TEST_BUSYBOX_REF" >/dev/null
            $1 podman tag "$TBX_TEST_BUSYBOX_REF" "localhost/tbxb-base:$p"
        else
            $1 podman untag "localhost/tbxb-base:$p" >/dev/null 2>&1 || true
        fi
    done
}
if [ "$was" != missing ]; then
    for who in root rootless; do
        pre=""; [ "$who" = rootless ] && pre=$as_user
        hold_bases "$pre" tag
        hyperfine --style none --runs "$RUNS" --export-json "$OUT/build-$who.json" \
            --prepare "$(clean "$pre"); echo 1 > $host_entry" \
            "$pre podman build -q --tls-verify=false --platform linux/amd64,linux/arm64 --manifest localhost/tbxb-pm:1 $bctx" \
            --prepare "$(clean "$pre"); echo 0 > $host_entry" \
            "$pre $TBX build $bctx --arch amd64,arm64 --tag localhost/tbxb-tb:1 --no-tls-verify --json" >/dev/null
        row+=$(row "build-$who" "goal <= 1.05x ($who), nothing registered on the host" 0)$'\n'
        sh -c "$(clean "$pre")"
        hold_bases "$pre" untag
    done
fi
restore; trap - EXIT
rm -rf "$bctx"
if [ "${1:-}" != --row ]; then
    echo "| command | min ms | median ms | ratio (median) | goal |"
    echo "|---|---|---|---|---|"
fi
printf '%s' "${row:-| build | | | | no host qemu-aarch64 entry to compare with |
}"

