#!/usr/bin/env bash
# The emulated reference of the acceleration tests (issue 31): Debian's hello 2.10-3 built with
# `dpkg-buildpackage -us -uc -b` in a plain (not accelerated) tbx container of the Debian 13 test
# image for ARCH, everything emulated, as the rootless test user. The .debs are kept in
#   $cache/hello-deb-<debarch>-<key>/
# where key is a hash of the image's root filesystem tarball and of the hello source: built once
# (about ten minutes, emulated), then reused. tests/system/test_accelerate.py builds the same
# package in an accelerated container and compares the two.
#
#   hello-reference.sh CACHE REF TBX USER ARCH DEBARCH ROOTFS_TARBALL   -> prints the directory
set -euo pipefail
cache=$1 ref=$2 tbx=$3 user=$4 arch=$5 deb=$6 rootfs=$7
log() { printf '[provision] %s\n' "$*" >&2; }

key=$(cat "$rootfs" "$cache"/hello/hello_2.10-3.dsc "$cache"/hello/hello_2.10-3.debian.tar.xz \
      "$cache"/hello/hello_2.10.orig.tar.gz | sha256sum | cut -c1-16)
out=$cache/hello-deb-$deb-$key
if [ -s "$out/hello_2.10-3_$deb.deb" ]; then
    log "cached $out"
    echo "$out"
    exit 0
fi
home=$(getent passwd "$user" | cut -d: -f6)
uid=$(id -u "$user")
as_user() { runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin \
    XDG_RUNTIME_DIR="/run/user/$uid" LANG=C.UTF-8 "$@"; }
name=tbxref-hello-$deb
work=$home/.tbxref-hello-$deb
had_image=0
as_user podman image exists "$ref-$deb" && had_image=1
cleanup() {
    as_user "$tbx" rm -f "$name" >/dev/null 2>&1 || true
    [ "$had_image" = 1 ] || as_user podman rmi -f "$ref-$deb" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cleanup
install -d -o "$user" -g "$user" "$work"
install -o "$user" -g "$user" -m 644 "$cache"/hello/hello_2.10* "$work/"
log "hello 2.10-3 for $deb: dpkg-buildpackage in a plain, emulated container (about ten minutes, once)"
as_user "$tbx" create "$name" --arch "$arch" --image "$ref" -y --no-tls-verify --no-accelerate >/dev/null
if ! (cd "$work" && as_user "$tbx" run -c "$name" sh -c \
        'dpkg-source --no-check -x hello_2.10-3.dsc >/dev/null && cd hello-2.10 && dpkg-buildpackage -us -uc -b' \
        >"$work/build.log" 2>&1); then
    tail -30 "$work/build.log" >&2
    exit 1
fi
mkdir -p "$out.tmp"
cp "$work"/*.deb "$work"/*.buildinfo "$work/build.log" "$out.tmp/"
cp "$work"/*.ddeb "$out.tmp/" 2>/dev/null || true
for old in "$cache"/hello-deb-"$deb"-*; do  # earlier references (another image or source)
    case $old in *.tmp) ;; *) rm -rf "$old" ;; esac
done
mv "$out.tmp" "$out"
chmod -R a+rX "$out"
log "built $out"
echo "$out"
