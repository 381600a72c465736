# tbx-init: the entrypoint (PID 1) of every tbx container.  POSIX sh.
#
# It is run by the HOST's own shell through the HOST's dynamic loader (both under /run/host),
# so nothing foreign executes before the emulator is registered: the host needs no binfmt_misc
# entry at all.  Steps:
#   1. for an emulated architecture: mount a binfmt_misc instance, make sure it is a fresh,
#      private one (this container's own user namespace; only `register` and `status`), and
#      register the emulator with the line tbx computed on the host (flags F and C);
#   2. make the invoking user exist (passwd, group, shadow), with passwordless sudo;
#   3. signal readiness in the status directory, then wait until stopped.
# Everything it does is logged to stdout (podman logs).  Any failure writes the reason to
# $status/failed and exits non-zero, having written nothing to a binfmt_misc it does not own.

set -u

loader= libpath= arch= binfmt= emulator= user= uid= gid= group= home= shell= status=/run/tbx
while [ $# -gt 0 ]; do
    case "$1" in
    --loader) loader=$2 ;;
    --library-path) libpath=$2 ;;
    --arch) arch=$2 ;;
    --binfmt) binfmt=$2 ;;
    --emulator) emulator=$2 ;;
    --user) user=$2 ;;
    --uid) uid=$2 ;;
    --gid) gid=$2 ;;
    --group) group=$2 ;;
    --home) home=$2 ;;
    --shell) shell=$2 ;;
    --status) status=$2 ;;
    *) printf 'tbx-init: error: unknown argument %s\n' "$1" >&2; exit 2 ;;
    esac
    shift 2
done

log() { printf 'tbx-init: %s\n' "$*"; }
fail() {
    printf 'tbx-init: error: %s\n' "$*" >&2
    printf '%s\n' "$*" >"$status/failed" 2>/dev/null
    exit 1
}
# Run a host program (under /run/host) through the host's loader: it needs no binfmt entry.
# Given as /usr/bin/NAME; found in /usr/bin, /bin, /usr/sbin or /sbin of the host.
host() {
    prog=${1##*/}
    shift
    for d in /usr/bin /bin /usr/sbin /sbin; do
        if [ -x "/run/host$d/$prog" ]; then
            "$loader" --library-path "$libpath" "/run/host$d/$prog" "$@"
            return
        fi
    done
    printf 'tbx-init: error: host program %s not found under /run/host\n' "$prog" >&2
    return 127
}

log "starting ($arch)"
[ -n "$loader" ] && [ -n "$libpath" ] || fail "missing --loader/--library-path"

if [ -n "$binfmt" ]; then
    bm=/proc/sys/fs/binfmt_misc
    # A non-initial user namespace is what makes the instance private (Linux >= 6.7).  The
    # initial namespace maps the whole 32-bit range onto itself.
    while read -r inside outside count; do
        if [ "$inside" = 0 ] && [ "$outside" = 0 ] && [ "$count" = 4294967295 ]; then
            fail "this container shares the host's user namespace: its binfmt_misc would be the host's; refusing to register (create it with tbx, which gives it its own user namespace)"
        fi
    done </proc/self/uid_map
    [ -f "$emulator" ] || fail "emulator $emulator is missing (on the host: ${emulator#/run/host}); install it, e.g. 'sudo apt-get install qemu-user-static', then start again"
    host /usr/bin/mount -t binfmt_misc binfmt_misc "$bm" ||
        fail "cannot mount binfmt_misc in this container's user namespace (Linux >= 6.7 and CAP_SYS_ADMIN in the container are needed; kernel: $(host /usr/bin/uname -r))"
    # From here until registration nothing foreign can run: shell builtins only.
    for f in "$bm"/*; do
        case "${f##*/}" in
        register | status) ;;
        *) fail "the binfmt_misc instance is not fresh (it has ${f##*/}): it is not this container's private one; refusing to register" ;;
        esac
    done
    [ -e "$bm/register" ] || fail "binfmt_misc mount has no register file"
    printf '%s' "$binfmt" >"$bm/register" || fail "registering the emulator failed: $binfmt"
    name=${binfmt#:}
    name=${name%%:*}
    [ -e "$bm/$name" ] || fail "registration $name did not appear"
    log "registered $name in a private binfmt_misc instance (flags ${binfmt##*:}, interpreter $emulator)"
fi

if [ -n "$user" ] && [ "$uid" != 0 ]; then
    has_entry() { # file key
        [ -f "$1" ] || return 1
        while IFS=: read -r n rest; do
            [ "$n" = "$2" ] && return 0
        done <"$1"
        return 1
    }
    has_gid() {
        while IFS=: read -r n x g rest; do
            [ "$g" = "$1" ] && return 0
        done </etc/group
        return 1
    }
    [ -x "$shell" ] || shell=/bin/sh
    has_gid "$gid" || printf '%s:x:%s:\n' "$group" "$gid" >>/etc/group
    # The user's entry as on the host (podman's keep-id writes one with /bin/sh): replace or add
    # it. The file is rewritten in place: podman may have bind-mounted it.
    want="$user:x:$uid:$gid:$user:$home:$shell"
    new=/etc/passwd.tbx-new
    found=
    : >"$new" || fail "cannot write $new"
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        "$user":*) printf '%s\n' "$want" >>"$new"; found=1 ;;
        *) printf '%s\n' "$line" >>"$new" ;;
        esac
    done </etc/passwd
    [ -n "$found" ] || printf '%s\n' "$want" >>"$new"
    host /usr/bin/cat "$new" >/etc/passwd || fail "cannot write /etc/passwd"
    host /usr/bin/rm -f "$new"
    if [ -f /etc/shadow ] && ! has_entry /etc/shadow "$user"; then
        printf '%s::19000:0:99999:7:::\n' "$user" >>/etc/shadow
    fi
    host /usr/bin/mkdir -p /etc/sudoers.d
    printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$user" >/etc/sudoers.d/tbx-user || fail "cannot write /etc/sudoers.d/tbx-user"
    host /usr/bin/chmod 0440 /etc/sudoers.d/tbx-user
    [ -d "$home" ] || { host /usr/bin/mkdir -p "$home" && host /usr/bin/chown "$uid:$gid" "$home"; }
    log "user $user ($uid:$gid) ready, home $home, shell $shell, passwordless sudo"
fi

: >/run/.toolboxenv 2>/dev/null
# Debian/Ubuntu's stock .bashrc shows /etc/debian_chroot in the prompt: say where you are.
[ -e /etc/debian_chroot ] || printf 'tbx:%s\n' "$arch" >/etc/debian_chroot 2>/dev/null
# Readiness: a shared lock on $status/ready, held for as long as this init lives (the file
# stays open on fd 9). tbx tests the lock from the host, so a stopped or killed container never
# looks ready. Without flock on the host the file's existence is all tbx can go by.
if [ -n "$(host /usr/bin/flock --version 2>/dev/null)" ]; then
    printf 'flock\n' >"$status/ready" || fail "cannot write $status/ready"
    exec 9<"$status/ready"
    host /usr/bin/flock --shared 9 || fail "cannot lock $status/ready"
else
    printf 'file\n' >"$status/ready" || fail "cannot write $status/ready"
fi
log "ready"

trap 'log "stopping"; exit 0' TERM INT HUP
while :; do
    host /usr/bin/sleep 86400 &
    wait $!
done
