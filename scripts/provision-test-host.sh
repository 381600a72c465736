#!/usr/bin/env bash
# Provision this machine as a tbx test host. Idempotent; run as root.
#
#   - installs podman, skopeo, qemu-user-static, runc, uidmap, debootstrap, docker-registry
#   - writes the podman settings this kind of machine needs (runc, ulimits)
#   - adds subuid/subgid ranges (root's --userns=auto, the rootless test user)
#   - creates the unprivileged test user `tbxtest` and its XDG_RUNTIME_DIR
#   - builds Debian minbase+sudo test images for amd64 and arm64 with debootstrap
#     (cached in /var/cache/tbx-ci, outside the clone), each with /platform-marker
#   - starts two local registries on free 127.0.0.1 ports (one with htpasswd auth) and
#     publishes: a two-arch index, a single-arch amd64 image, the index again behind auth
#   - installs the ssh node of the connection tests (test-node.sh install: openssh-server, a node
#     user, keys; sshd on 127.0.0.1 only, started and stopped by the tests)
#   - builds the emulated reference of the acceleration tests once (scripts/hello-reference.sh:
#     Debian's hello .deb from a plain arm64 tbx container, about ten minutes, cached)
#   - leaves the host's qemu binfmt_misc entries DISABLED, to prove tbx needs none
#   - writes the facts the tests need to $TBX_TEST_ENV (default /run/tbx-ci/env)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${TBX_CI_CACHE:-/var/cache/tbx-ci}
state=${TBX_CI_STATE:-/run/tbx-ci}
env_file=${TBX_TEST_ENV:-$state/env}
test_user=${TBX_TEST_USER:-tbxtest}
mirror=${TBX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

log() { printf '[provision] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "provision-test-host.sh must run as root" >&2; exit 1; }

bash "$here/install-host-packages.sh" debootstrap docker-registry apache2-utils busybox-static tmux hyperfine man-db zsh fish pipx gcc libc6-dev
mkdir -p "$cache" "$state"

# --- podman settings ------------------------------------------------------------------
bash "$here/configure-podman.sh"

# --- subordinate id ranges -------------------------------------------------------------
add_range() { # file user start count
    grep -q "^$2:" "$1" 2>/dev/null || echo "$2:$3:$4" >>"$1"
}
getent passwd containers >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin containers
getent passwd "$test_user" >/dev/null || useradd --create-home --shell /bin/bash "$test_user"
for f in /etc/subuid /etc/subgid; do
    touch "$f"
    add_range "$f" "$test_user" 100000 65536
    add_range "$f" containers 1000000 1000000000
    add_range "$f" root 1001000000 65536   # the user namespace of root's image builds
done
test_uid=$(id -u "$test_user")
install -d -m 700 -o "$test_user" -g "$test_user" "/run/user/$test_uid"

# --- binfmt_misc ------------------------------------------------------------------------
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
host_binfmt() { # enable|disable: the host's qemu-user-static entries
    update-binfmts --import >/dev/null 2>&1 || true
    for e in /proc/sys/fs/binfmt_misc/qemu-*; do
        [ -e "$e" ] || continue
        if [ "$1" = enable ]; then echo 1 >"$e"; else echo 0 >"$e"; fi
    done
}

# --- test root filesystems (cached) ----------------------------------------------------------
build_rootfs() { # arch -> $cache/debian-$suite-$arch.tar
    local arch=$1
    local tarball="$cache/debian-$suite-$arch.tar"
    if [ -s "$tarball" ]; then log "cached $tarball"; return; fi
    local dir
    dir=$(mktemp -d "$cache/rootfs-$arch.XXXXXX")
    log "debootstrap $suite/$arch (a few minutes the first time)"
    if [ "$arch" != amd64 ]; then host_binfmt enable; fi
    debootstrap --variant=minbase --include=sudo,ca-certificates --arch="$arch" "$suite" "$dir" "$mirror" \
        >"$cache/debootstrap-$arch.log" 2>&1 || { tail -20 "$cache/debootstrap-$arch.log" >&2; exit 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    chmod 755 "$dir"
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
}
build_rootfs amd64
build_rootfs arm64
# Debian 13 (trixie) build roots for acceleration (issue 31): arm64 and riscv64 with a compiler,
# amd64 plain (the base tbx installs the cross toolchains on). Debian 13's native and cross gcc
# are built from the same source revision.
build_root() { # suite, debian arch, extra packages, tarball
    local suite=$1 arch=$2 include=$3 tarball=$4
    if [ -s "$tarball" ]; then log "cached $tarball"; return; fi
    # first stage (download and unpack, nothing runs) kept apart: a later attempt starts from it
    local dir="$cache/stage1-$suite-$arch"
    if [ ! -f "$dir/.stage1-done" ]; then
        rm -rf "$dir"; mkdir -p "$dir"
        log "debootstrap $suite/$arch with $include: downloading"
        debootstrap --foreign --variant=minbase --include="$include" --arch="$arch" "$suite" "$dir" "$mirror" \
            >"$tarball.log" 2>&1 || { tail -20 "$tarball.log" >&2; exit 1; }
        touch "$dir/.stage1-done"
    fi
    log "debootstrap $suite/$arch: second stage (several minutes the first time: emulated)"
    if [ "$arch" != amd64 ]; then host_binfmt enable; fi
    chroot "$dir" /debootstrap/debootstrap --second-stage >>"$tarball.log" 2>&1 || { tail -20 "$tarball.log" >&2; exit 1; }
    rm -f "$dir/.stage1-done"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    chmod 755 "$dir"
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
}
build13=sudo,ca-certificates,build-essential,dpkg-dev,g++,debhelper,help2man,texinfo,fakeroot
build_root trixie amd64 sudo,ca-certificates "$cache/debian-trixie-amd64.tar"
build_root trixie arm64 "$build13" "$cache/debian-trixie-arm64.tar"
build_root trixie riscv64 "$build13" "$cache/debian-trixie-riscv64.tar"
# Debian 12 with a compiler: its native and cross gcc are NOT the same source revision
build_root bookworm arm64 sudo,ca-certificates,build-essential "$cache/debian-bookworm-build-arm64.tar"
# Debian's hello (2.10-3): its source, for the acceleration tests (fetched once)
if [ ! -s "$cache/hello/hello_2.10-3.dsc" ]; then
    mkdir -p "$cache/hello.tmp"
    for f in hello_2.10-3.dsc hello_2.10.orig.tar.gz hello_2.10-3.debian.tar.xz; do
        curl -fsS -o "$cache/hello.tmp/$f" "$mirror/pool/main/h/hello/$f"
    done
    rm -rf "$cache/hello" && mv "$cache/hello.tmp" "$cache/hello"
fi
# Tiny busybox root filesystems of three arches (Debian's busybox-static), for image builds.
# apt-get uses lists of its own here: the host's dpkg architectures stay as they are.
fetch_busybox_debs() { # amd64 arm64 s390x -> $cache/busybox-debs/*.deb (once)
    local debs="$cache/busybox-debs" missing=() a
    for a in "$@"; do ls "$debs"/busybox-static_*_"$a".deb >/dev/null 2>&1 || missing+=("busybox-static:$a"); done
    [ ${#missing[@]} = 0 ] && return
    local aptopts=(-q -o "Dir::State::Lists=$debs/lists")
    for a in "$@"; do aptopts+=(-o "APT::Architectures::=$a"); done
    mkdir -p "$debs/lists/partial"
    apt-get "${aptopts[@]}" update >"$debs/update.log" 2>&1 || { tail -5 "$debs/update.log" >&2; exit 1; }
    (cd "$debs" && apt-get "${aptopts[@]}" download "${missing[@]}" >"$debs/download.log" 2>&1) \
        || { tail -5 "$debs/download.log" >&2; exit 1; }
}
build_busybox() { # arch -> $cache/busybox-$arch.tar
    local arch=$1
    local tarball="$cache/busybox-$arch.tar" debs="$cache/busybox-debs"
    if [ -s "$tarball" ]; then log "cached $tarball"; return; fi
    local dir x
    dir=$(mktemp -d "$cache/busybox-$arch.XXXXXX"); x=$(mktemp -d)
    dpkg-deb -x "$(ls "$debs"/busybox-static_*_"$arch".deb | head -1)" "$x"
    mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
    chmod 1777 "$dir/tmp"; chmod 755 "$dir"
    cp "$x/bin/busybox" "$dir/bin/busybox"
    # the applet names, from the host's own busybox of the same version
    for a in $(/bin/busybox --list 2>/dev/null || echo sh uname cat echo ls true false mkdir test sleep id); do
        [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
    done
    echo "root:x:0:0:root:/root:/bin/sh" >"$dir/etc/passwd"
    echo "root:x:0:" >"$dir/etc/group"
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir" "$x"
}
fetch_busybox_debs amd64 arm64 s390x
for a in amd64 arm64 s390x; do build_busybox "$a"; done
# From here on the host's qemu entries stay off: the system tests prove tbx needs none.
host_binfmt disable

# --- registries --------------------------------------------------------------------------------
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # name port [htpasswd]
    local name=$1 port=$2 auth=${3:-} dir="$state/registry-$1"
    mkdir -p "$dir" "$cache/registry-$name"
    if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; fi
    {
        echo "version: 0.1"
        echo "log: {level: warn}"
        echo "storage: {filesystem: {rootdirectory: $cache/registry-$name}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$port}"
        if [ -n "$auth" ]; then echo "auth: {htpasswd: {realm: tbx-test, path: $auth}}"; fi
    } >"$dir/config.yml"
    nohup docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
        sleep 0.1
    done
    echo "registry $name did not start; log:" >&2; cat "$dir/log" >&2; exit 1
}
plain_port=$(free_port)
start_registry plain "$plain_port"
auth_port=$(free_port)
while [ "$auth_port" = "$plain_port" ]; do auth_port=$(free_port); done
htpasswd -Bbc "$state/htpasswd" tbxuser tbxpass >/dev/null 2>&1
start_registry auth "$auth_port" "$state/htpasswd"
authfile="$state/auth.json"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$auth_port" "$(printf tbxuser:tbxpass | base64)" >"$authfile"
chmod 644 "$authfile"

log "building OCI layouts and publishing"
layout="$cache/oci"
/usr/bin/python3 "$here/make_test_images.py" --out "$layout" \
    --rootfs "amd64=$cache/debian-$suite-amd64.tar" --rootfs "arm64=$cache/debian-$suite-arm64.tar" \
    --marker-only s390x
plain="127.0.0.1:$plain_port"
auth="127.0.0.1:$auth_port"
skopeo copy -q --all --dest-tls-verify=false "oci:$layout:index" "docker://$plain/tbx-test/debian:12"
skopeo copy -q --dest-tls-verify=false "oci:$layout:amd64" "docker://$plain/tbx-test/amd64-only:12"
/usr/bin/python3 "$here/make_test_images.py" --out "$cache/oci-trixie" \
    --rootfs "amd64=$cache/debian-trixie-amd64.tar" --rootfs "arm64=$cache/debian-trixie-arm64.tar" \
    --rootfs "riscv64=$cache/debian-trixie-riscv64.tar"
skopeo copy -q --all --dest-tls-verify=false "oci:$cache/oci-trixie:index" "docker://$plain/tbx-test/debian:13"
/usr/bin/python3 "$here/make_test_images.py" --out "$cache/oci-bookworm-build" \
    --rootfs "amd64=$cache/debian-$suite-amd64.tar" --rootfs "arm64=$cache/debian-bookworm-build-arm64.tar"
skopeo copy -q --all --dest-tls-verify=false "oci:$cache/oci-bookworm-build:index" "docker://$plain/tbx-test/debian-build:12"
skopeo copy -q --dest-tls-verify=false "oci:$layout:s390x-marker" "docker://$plain/tbx-test/s390x-only:1"
/usr/bin/python3 "$here/make_test_images.py" --out "$cache/oci-busybox" \
    --rootfs "amd64=$cache/busybox-amd64.tar" --rootfs "arm64=$cache/busybox-arm64.tar" \
    --rootfs "s390x=$cache/busybox-s390x.tar"
skopeo copy -q --all --dest-tls-verify=false "oci:$cache/oci-busybox:index" "docker://$plain/tbx-test/busybox:1"
skopeo copy -q --all --dest-tls-verify=false --dest-creds tbxuser:tbxpass "oci:$layout:index" "docker://$auth/tbx-test/debian:12"
# Emulator images laid out like the common binfmt images (static qemu-ARCH in /usr/bin), made
# from this host's qemu-user-static: a good one, and a bad one (a dynamic qemu-aarch64 and an
# arm64 binary named qemu-s390x-static) that tbx emulator pull must refuse.
emulator_tar() { # tarball NAME=FILE...
    local tarball=$1 dir
    shift
    dir=$(mktemp -d)
    mkdir -p "$dir/usr/bin"
    for pair in "$@"; do cp "${pair#*=}" "$dir/usr/bin/${pair%%=*}"; chmod 755 "$dir/usr/bin/${pair%%=*}"; done
    chmod 755 "$dir"
    tar --numeric-owner -C "$dir" -cf "$tarball" .
    rm -rf "$dir"
}
bb=$(mktemp -d)
tar -xf "$cache/busybox-arm64.tar" -C "$bb" ./bin/busybox
emulator_tar "$cache/emulators-good.tar" qemu-aarch64=/usr/bin/qemu-aarch64-static \
    qemu-arm=/usr/bin/qemu-arm-static qemu-riscv64=/usr/bin/qemu-riscv64-static
emulator_tar "$cache/emulators-bad.tar" qemu-aarch64=/usr/bin/true qemu-s390x-static="$bb/bin/busybox"
rm -rf "$bb"
for kind in good bad; do
    rm -rf "$cache/oci-emulators-$kind"
    /usr/bin/python3 "$here/make_test_images.py" --out "$cache/oci-emulators-$kind" \
        --rootfs "amd64=$cache/emulators-$kind.tar"
    skopeo copy -q --dest-tls-verify=false "oci:$cache/oci-emulators-$kind:amd64" \
        "docker://$plain/tbx-test/binfmt-$kind:1"
done

# The ssh node of the connection tests (issue 15): installed here; the tests start and stop it.
bash "$here/test-node.sh" install

# The emulated reference of the acceleration tests: hello's .deb built in a plain arm64 container
# of the Debian 13 image (about ten minutes once, cached by the image's and the source's hash)
tbx=${TBX_VENV:-/opt/tbx}/bin/tbx
hello_deb_arm64=
if [ -x "$tbx" ]; then
    hello_deb_arm64=$(bash "$here/hello-reference.sh" "$cache" "$plain/tbx-test/debian:13" "$tbx" "$test_user" \
        aarch64 arm64 "$cache/debian-trixie-arm64.tar")
else
    log "tbx is not installed at $tbx: no emulated hello reference (scripts/install.sh first)"
fi

cat >"$env_file.tmp" <<EOF
TBX_TEST_REGISTRY=$plain
TBX_TEST_AUTH_REGISTRY=$auth
TBX_TEST_AUTHFILE=$authfile
TBX_TEST_INDEX_REF=$plain/tbx-test/debian:12
TBX_TEST_SINGLE_REF=$plain/tbx-test/amd64-only:12
TBX_TEST_AUTH_REF=$auth/tbx-test/debian:12
TBX_TEST_S390X_REF=$plain/tbx-test/s390x-only:1
TBX_TEST_BUSYBOX_REF=$plain/tbx-test/busybox:1
TBX_TEST_DEBIAN13_REF=$plain/tbx-test/debian:13
TBX_TEST_DEBIAN12_BUILD_REF=$plain/tbx-test/debian-build:12
TBX_TEST_HELLO_DIR=$cache/hello
TBX_TEST_HELLO_DEB_ARM64=$hello_deb_arm64
TBX_TEST_EMULATOR_REF=$plain/tbx-test/binfmt-good:1
TBX_TEST_BAD_EMULATOR_REF=$plain/tbx-test/binfmt-bad:1
TBX_TEST_OCI_LAYOUT=$layout
TBX_TEST_USER=$test_user
TBX_TEST_UID=$test_uid
EOF
chmod 644 "$env_file.tmp"
mv "$env_file.tmp" "$env_file"
log "ready: $env_file"
