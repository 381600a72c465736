# tbx-init: the entrypoint (PID 1) of every tbx container.  POSIX sh.
#
# It is run by the HOST's own shell through the HOST's dynamic loader (both under /run/host, the
# host's read-only directories), given as `sh -c SCRIPT tbx-init ARGS`, so nothing of the
# container's (possibly foreign) architecture runs before its emulator is registered.  Steps:
#   1. for an emulated architecture: wait until tbx has registered the emulator in this
#      container's own binfmt_misc instance (tbx does that from the host, with setns: the
#      container itself has no CAP_SYS_ADMIN and cannot mount anything);
#   2. make the invoking user exist (passwd, group, shadow), with passwordless sudo;
#   3. signal readiness in the status directory, then wait until stopped.
# It writes only regular files it creates itself and never writes through a symbolic link the
# image planted: where the image has one, it refuses with the reason.  Everything it does is
# logged to stdout (podman logs).  Any failure writes the reason to $status/failed and exits 1.

set -u

loader= libpath= arch= binfmt_name= binfmt_host= user= uid= gid= group= home= shell= status=/run/tbx
bad_args=
while [ $# -gt 0 ]; do
    if [ $# -lt 2 ]; then
        bad_args="option $1 has no value"
        break
    fi
    case "$1" in
    --loader) loader=$2 ;;
    --library-path) libpath=$2 ;;
    --arch) arch=$2 ;;
    --binfmt-name) binfmt_name=$2 ;;
    --binfmt-host) binfmt_host=$2 ;;
    --user) user=$2 ;;
    --uid) uid=$2 ;;
    --gid) gid=$2 ;;
    --group) group=$2 ;;
    --home) home=$2 ;;
    --shell) shell=$2 ;;
    --status) status=$2 ;;
    *) bad_args="unknown argument $1" ;;
    esac
    shift 2
done

log() { printf 'tbx-init: %s\n' "$*"; }
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
# Write $2 to the new regular file $1 (never through a link: the old file is removed first and
# the new one is created exclusively).
put() {
    [ -L "$1" ] || [ ! -e "$1" ] || [ -f "$1" ] || return 1
    host /usr/bin/rm -f "$1" || return 1
    (set -C && printf '%s' "$2" >"$1")
}
fail() {
    printf 'tbx-init: error: %s\n' "$*" >&2
    put "$status/failed" "$*
" 2>/dev/null
    exit 1
}
# The image must not have a symbolic link (or anything but a regular file or directory) where
# the init writes: it would write wherever the link points, the user's home included.
no_link() {
    for p; do
        if [ -L "$p" ]; then
            fail "$p is a symbolic link in this image; tbx writes only regular files there and will not follow it (remove the link from the image)"
        fi
        if [ -e "$p" ] && [ ! -f "$p" ] && [ ! -d "$p" ]; then
            fail "$p is not a regular file in this image; refusing to write it"
        fi
    done
}

[ -z "$bad_args" ] || fail "tbx-init: $bad_args"
log "starting ($arch)"
[ -n "$loader" ] && [ -n "$libpath" ] || fail "missing --loader/--library-path"
host /usr/bin/rm -f "$status/failed" "$status/ready" 2>/dev/null

if [ -n "$binfmt_host" ]; then
    log "binfmt mode host: the host's binfmt_misc entry $binfmt_host runs this container's $arch programs; no private registration"
fi
if [ -n "$binfmt_name" ]; then
    # tbx registers the emulator from the host right after it starts this container; nothing
    # foreign can run before that, so only builtins and host programs are used until then.
    i=0
    while [ ! -e "/proc/sys/fs/binfmt_misc/$binfmt_name" ]; do
        [ "$i" = 0 ] && log "waiting for tbx to register $binfmt_name in this container's binfmt_misc"
        i=$((i + 1))
        host /usr/bin/sleep 0.02
    done
    interp= flags=
    while read -r k v; do
        case "$k" in interpreter) interp=$v ;; flags:) flags=$v ;; esac
    done <"/proc/sys/fs/binfmt_misc/$binfmt_name"
    log "tbx registered $binfmt_name in a private binfmt_misc instance (flags $flags, interpreter $interp)"
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
    no_link /etc /etc/passwd /etc/group /etc/shadow /etc/sudoers.d /etc/sudoers.d/tbx-user /etc/passwd.tbx-new
    [ -x "$shell" ] || shell=/bin/sh
    has_gid "$gid" || printf '%s:x:%s:\n' "$group" "$gid" >>/etc/group || fail "cannot write /etc/group"
    # The user's entry as on the host (podman's keep-id writes one with /bin/sh): replace or add
    # it. The new file is written completely first; only then does it replace the old one.
    want="$user:x:$uid:$gid:$user:$home:$shell"
    new=/etc/passwd.tbx-new
    found=
    host /usr/bin/rm -f "$new"
    (set -C && : >"$new") || fail "cannot write $new"
    {
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in
            "$user":*) printf '%s\n' "$want"; found=1 ;;
            *) printf '%s\n' "$line" ;;
            esac
        done </etc/passwd
        [ -n "$found" ] || printf '%s\n' "$want"
    } >>"$new" || fail "cannot write $new"
    if ! host /usr/bin/mv -f "$new" /etc/passwd 2>/dev/null; then
        # podman may have bind-mounted /etc/passwd (it cannot be renamed over): copy it in place,
        # from a backup if that fails half-way.
        host /usr/bin/cp /etc/passwd /etc/passwd.tbx-old || fail "cannot back up /etc/passwd"
        if ! host /usr/bin/cat "$new" >/etc/passwd; then
            host /usr/bin/cat /etc/passwd.tbx-old >/etc/passwd
            fail "cannot write /etc/passwd (left as it was)"
        fi
        host /usr/bin/rm -f "$new" /etc/passwd.tbx-old
    fi
    if [ -f /etc/shadow ] && ! has_entry /etc/shadow "$user"; then
        printf '%s::19000:0:99999:7:::\n' "$user" >>/etc/shadow || fail "cannot write /etc/shadow"
    fi
    [ -d /etc/sudoers.d ] || host /usr/bin/mkdir -p /etc/sudoers.d || fail "cannot make /etc/sudoers.d"
    put /etc/sudoers.d/tbx-user "$user ALL=(ALL) NOPASSWD: ALL
" || fail "cannot write /etc/sudoers.d/tbx-user"
    host /usr/bin/chmod 0440 /etc/sudoers.d/tbx-user
    [ -d "$home" ] || { host /usr/bin/mkdir -p "$home" && host /usr/bin/chown "$uid:$gid" "$home"; }
    log "user $user ($uid:$gid) ready, home $home, shell $shell, passwordless sudo"
elif [ -n "$user" ] && [ ! -d "$home" ]; then
    # root's home is not shared (its containers' root is not host root): the image's own, made if missing
    no_link "$home"
    host /usr/bin/mkdir -p -m 0700 "$home" || fail "cannot make $home"
fi

# An accelerated container's environment (tbx's accel.environment) must reach programs run under
# sudo too, which resets the environment: the names tbx gives in TBX_SUDO_KEEP are kept.
case "${TBX_SUDO_KEEP:-}" in
"") ;;
*[!A-Z_\ ]*) fail "TBX_SUDO_KEEP has other characters than names: $TBX_SUDO_KEEP" ;;
*)
    no_link /etc /etc/sudoers.d /etc/sudoers.d/tbx-env
    [ -d /etc/sudoers.d ] || host /usr/bin/mkdir -p /etc/sudoers.d || fail "cannot make /etc/sudoers.d"
    put /etc/sudoers.d/tbx-env "Defaults env_keep += \"$TBX_SUDO_KEEP\"
" || fail "cannot write /etc/sudoers.d/tbx-env"
    host /usr/bin/chmod 0440 /etc/sudoers.d/tbx-env
    log "sudo keeps $TBX_SUDO_KEEP"
    # dpkg cannot replace or remove a file the native tools are bound over (a mount point): it
    # would fail half-way. apt asks this guard first, which refuses such packages, naming them.
    if [ -d /etc/apt/apt.conf.d ]; then
        no_link /etc/apt /etc/apt/apt.conf.d /etc/apt/apt.conf.d/00tbx-accel /etc/apt/tbx-accel-guard
        guard=$(host /usr/bin/cat <<'GUARD'
#!/bin/sh
# tbx: this container is accelerated (tbx create --accelerate): the host's native tools are bound
# over some of its files, and dpkg cannot replace or remove a mount point. apt runs this before
# dpkg (DPkg::Pre-Install-Pkgs, version 2: "package old < new file|**REMOVE**|**CONFIGURE**").
mounts=$(grep -F /tbx/accel/ /proc/self/mountinfo | cut -d' ' -f5)
[ -n "$mounts" ] || exit 0
while read -r line && [ -n "$line" ]; do :; done # the VERSION line and apt's configuration
hits=
while read -r pkg old cmp new what rest; do
    [ "$what" = "**CONFIGURE**" ] && continue
    for list in /var/lib/dpkg/info/"${pkg%%:*}".list /var/lib/dpkg/info/"${pkg%%:*}":*.list; do
        [ -f "$list" ] || continue
        own=$(sed 's#^/\(bin\|sbin\|lib\|lib32\|lib64\|libx32\)/#/usr/\1/#' "$list" | grep -Fx -e "$mounts" |
            while read -r f; do [ -d "$f" ] || printf ' %s' "$f"; done)
        [ -z "$own" ] || hits="$hits  ${pkg%%:*}:$own
"
    done
done
[ -n "$hits" ] || exit 0
printf '%s\n' "tbx: this container runs the host's native tools in place of these packages' files" \
    "(tbx create --accelerate), and dpkg cannot replace or remove them here:" >&2
printf '%s' "$hits" | sort -u >&2
printf '%s\n' "Nothing was changed. Upgrade them in the image (then tbx create again), or use a" \
    "container made without --accelerate." >&2
exit 1
GUARD
)
        put /etc/apt/tbx-accel-guard "$guard
" || fail "cannot write /etc/apt/tbx-accel-guard"
        host /usr/bin/chmod 0755 /etc/apt/tbx-accel-guard
        put /etc/apt/apt.conf.d/00tbx-accel 'DPkg::Pre-Install-Pkgs { "/etc/apt/tbx-accel-guard"; };
DPkg::Tools::Options::/etc/apt/tbx-accel-guard::Version "2";
' || fail "cannot write /etc/apt/apt.conf.d/00tbx-accel"
        log "apt refuses packages whose files the native tools are bound over"
    fi
    ;;
esac

no_link /run /run/.toolboxenv /etc/debian_chroot
[ -f /run/.toolboxenv ] || put /run/.toolboxenv "" 2>/dev/null
# Debian/Ubuntu's stock .bashrc shows /etc/debian_chroot in the prompt: say where you are.
[ -e /etc/debian_chroot ] || put /etc/debian_chroot "tbx:$arch
" 2>/dev/null
# Readiness: a shared lock on $status/ready, held for as long as this init lives (the file
# stays open on fd 9). tbx tests the lock from the host, so a stopped or killed container never
# looks ready. Without flock on the host the file's existence is all tbx can go by.
if [ -n "$(host /usr/bin/flock --version 2>/dev/null)" ]; then
    put "$status/ready" "flock
" || fail "cannot write $status/ready"
    exec 9<"$status/ready"
    host /usr/bin/flock --shared 9 || fail "cannot lock $status/ready"
else
    put "$status/ready" "file
" || fail "cannot write $status/ready"
fi
log "ready"

trap 'log "stopping"; exit 0' TERM INT HUP
while :; do
    host /usr/bin/sleep 86400 &
    wait $!
done
