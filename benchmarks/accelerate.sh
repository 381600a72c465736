#!/usr/bin/env bash
# Acceleration (issue 31), side by side in one run: Debian's hello 2.10 (./configure && make &&
# make check) and Lua 5.4.4 (make posix: 60 C files, compile-bound) built
#   - in an accelerated arm64 Debian 13 container (tbx create --accelerate),
#   - in a plain arm64 container of the same image (everything emulated),
#   - natively on this x86_64 host,
# each from a fresh copy of the sources, as the rootless test user. One run each by default
# (the emulated build takes minutes): RUNS=3 for more. Goals: hello >= 12x faster than emulated
# and within 1.5x of the host; Lua >= 8x faster than emulated.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
RUNS=${RUNS:-1}
user=$TBX_TEST_USER
home=/home/$user
ref=$TBX_TEST_DEBIAN13_REF
cache=${TBX_CI_CACHE:-/var/cache/tbx-ci}
as_user() { runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin \
    XDG_RUNTIME_DIR="/run/user/$TBX_TEST_UID" LANG=C.UTF-8 "$@"; }

lua=$cache/lua/lua5.4_5.4.4.orig.tar.gz
if [ ! -s "$lua" ]; then
    mkdir -p "$cache/lua"
    curl -fsS -o "$lua.tmp" "http://deb.debian.org/debian/pool/main/l/lua5.4/lua5.4_5.4.4.orig.tar.gz"
    mv "$lua.tmp" "$lua"
fi
hello=$TBX_TEST_HELLO_DIR/hello_2.10.orig.tar.gz

acc=tbxb-acc-arm64 plain=tbxb-plain-arm64
as_user "$TBX" rm -f "$acc" "$plain" >/dev/null 2>&1 || true
as_user "$TBX" create "$acc" --arch aarch64 --image "$ref" -y --no-tls-verify --accelerate >/dev/null
as_user "$TBX" create "$plain" --arch aarch64 --image "$ref" -y --no-tls-verify --no-accelerate >/dev/null
work=$home/tbxb-accel
rm -rf "$work"; install -d -o "$user" -g "$user" "$work"

# one build: where (acc|plain|host), what (hello|lua) -> a fresh tree in $work/where-what, built there
cat >"$work/build.sh" <<'EOF'
#!/bin/sh
set -e
where=$1 what=$2 tarball=$3
d=$HOME/tbxb-accel/$where-$what
rm -rf "$d"; mkdir -p "$d"; cd "$d"
tar -xzf "$tarball"
cd */
case $what in
    hello) ./configure >/dev/null && make >/dev/null && make check >/dev/null ;;
    lua) make posix >/dev/null ;;
esac
EOF
chmod 755 "$work/build.sh"
cp "$hello" "$lua" "$work/"
chown -R "$user:$user" "$work"
H=$work/$(basename "$hello") L=$work/$(basename "$lua")
B=$work/build.sh
run_in() { echo "runuser -u $user -- env -i HOME=$home USER=$user PATH=/usr/bin:/bin XDG_RUNTIME_DIR=/run/user/$TBX_TEST_UID $TBX run -c $1 $B $2 $3 $4"; }
host() { echo "runuser -u $user -- env -i HOME=$home USER=$user PATH=/usr/bin:/bin $B host $1 $2"; }

for what in hello lua; do
    tb=$H; [ "$what" = lua ] && tb=$L
    # hyperfine directly: hf's warm-up and two-run minimum would build the emulated tree 3 times
    hyperfine -N --style basic --runs "$RUNS" --export-json "$OUT/accelerate-$what.json" \
        "$(run_in "$acc" acc "$what" "$tb")" "$(run_in "$plain" plain "$what" "$tb")" "$(host "$what" "$tb")" >&2
done
as_user "$TBX" rm -f "$acc" "$plain" >/dev/null
rm -rf "$work"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print("| build | accelerated (s) | emulated (s) | host (s) | vs emulated | vs host |")
print("|---|---|---|---|---|---|")
for what in ("hello", "lua"):
    res = json.load(open(f"{out}/accelerate-{what}.json"))["results"]
    acc, emu, host = (r["mean"] for r in res)
    print(f"| {what} | {acc:.1f} | {emu:.1f} | {host:.1f} | {emu / acc:.1f}x faster | {acc / host:.2f}x |")
PY
