#!/usr/bin/env bash
# A real "native machine" for the connection tests (issue 15), on this host: openssh-server
# listening on 127.0.0.1 only, a separate node user with its own rootless podman API socket
# (podman system service), key-only auth, and a podman connection added for the test user.
#
#   test-node.sh install   packages, the node user, keys, sshd's configuration (provisioning, idempotent)
#   test-node.sh up        start (idempotent); prints NAME=VALUE facts for the tests
#   test-node.sh stop-ssh  stop sshd only (a node that does not answer)
#   test-node.sh start-ssh start sshd again
#   test-node.sh down      stop everything, remove the connection, the node's containers and images
#
# Host-key checking stays on: the node's host key goes into the test user's known_hosts.
set -euo pipefail

state=${TBX_CI_STATE:-/run/tbx-ci}/node
test_user=${TBX_TEST_USER:-tbxtest}
node_user=${TBX_NODE_USER:-tbxnode}
conn=${TBX_NODE_CONNECTION:-tbx-node}
log() { printf '[node] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "test-node.sh must run as root" >&2; exit 1; }

as_node() { # command... as the node user, with its runtime directory
    local uid
    uid=$(id -u "$node_user")
    runuser -u "$node_user" -- env -i HOME="/home/$node_user" USER="$node_user" LOGNAME="$node_user" \
        PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
as_test() {
    local uid
    uid=$(id -u "$test_user")
    runuser -u "$test_user" -- env -i HOME="/home/$test_user" USER="$test_user" LOGNAME="$test_user" \
        PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_ssh() {
    alive "$state/sshd.pid" && return 0
    install -d -m 755 /run/sshd
    /usr/sbin/sshd -f "$state/sshd_config" -E "$state/sshd.log"
    for _ in $(seq 50); do
        alive "$state/sshd.pid" && return 0
        sleep 0.1
    done
    echo "sshd did not start; log:" >&2
    cat "$state/sshd.log" >&2
    exit 1
}

stop_ssh() {
    if alive "$state/sshd.pid"; then
        kill "$(cat "$state/sshd.pid")"
        for _ in $(seq 50); do alive "$state/sshd.pid" || break; sleep 0.1; done
    fi
    rm -f "$state/sshd.pid"
    # sessions still open from before (each is its own sshd process for the node user)
    pkill -u "$node_user" -f '^sshd: ' 2>/dev/null || true
}

install_node() {
    if ! dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q "install ok installed"; then
        # the package's own sshd (port 22, every address) must not start: only ours runs
        local policy=/usr/sbin/policy-rc.d made=0
        if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; made=1; fi
        bash "$(dirname "$0")/install-host-packages.sh" openssh-server openssh-client
        [ "$made" = 1 ] && rm -f "$policy"
    fi
    getent passwd "$node_user" >/dev/null || useradd --create-home --shell /bin/bash "$node_user"
    # no password at all ('*'), not a locked account ('!'): sshd without PAM refuses locked ones
    usermod -p '*' "$node_user"
    for f in /etc/subuid /etc/subgid; do
        grep -q "^$node_user:" "$f" || echo "$node_user:300000:65536" >>"$f"
    done
    local nuid tuid port sock
    nuid=$(id -u "$node_user")
    tuid=$(id -u "$test_user")
    install -d -m 700 -o "$node_user" -g "$node_user" "/run/user/$nuid"
    install -d -m 755 "$state"
    # sshd: its own host key and configuration, 127.0.0.1 only, keys only, the node user only
    [ -f "$state/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$state/host_ed25519"
    if [ -f "$state/port" ]; then
        port=$(cat "$state/port")
    else
        port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        echo "$port" >"$state/port"
    fi
    cat >"$state/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $state/host_ed25519
PidFile $state/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $node_user
UsePAM no
StrictModes yes
X11Forwarding no
# podman's client reaches the API socket through ssh's forwarding to a unix path: keep it allowed
AllowStreamLocalForwarding yes
Subsystem sftp internal-sftp
EOF
    # the test user's key, authorized for the node user; the node's host key, known to the test user
    local tssh=/home/$test_user/.ssh nssh=/home/$node_user/.ssh
    install -d -m 700 -o "$test_user" -g "$test_user" "$tssh"
    [ -f "$tssh/tbx_node_ed25519" ] || as_test ssh-keygen -q -t ed25519 -N '' -f "$tssh/tbx_node_ed25519"
    install -d -m 700 -o "$node_user" -g "$node_user" "$nssh"
    install -m 600 -o "$node_user" -g "$node_user" "$tssh/tbx_node_ed25519.pub" "$nssh/authorized_keys"
    touch "$tssh/known_hosts"
    grep -v "^\[127.0.0.1\]:$port " "$tssh/known_hosts" >"$tssh/known_hosts.new" || true
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$state/host_ed25519.pub")" >>"$tssh/known_hosts.new"
    mv "$tssh/known_hosts.new" "$tssh/known_hosts"
    chown "$test_user:" "$tssh/known_hosts"
    chmod 644 "$tssh/known_hosts"
    log "installed: sshd on 127.0.0.1:$port for $node_user"
}

up() {
    [ -f "$state/sshd_config" ] && getent passwd "$node_user" >/dev/null ||
        { echo "the node is not installed: run test-node.sh install (provision-test-host.sh does)" >&2; exit 1; }
    local nuid port sock tssh=/home/$test_user/.ssh
    nuid=$(id -u "$node_user")
    port=$(cat "$state/port")
    install -d -m 700 -o "$node_user" -g "$node_user" "/run/user/$nuid"
    start_ssh
    # the node user's podman API socket
    sock=/run/user/$nuid/podman/podman.sock
    if ! alive "$state/service.pid"; then
        as_node mkdir -p "$(dirname "$sock")"
        rm -f "$sock"
        as_node podman system migrate >/dev/null 2>&1 || true
        as_node setsid podman system service --time=0 "unix://$sock" \
            </dev/null >"$state/service.log" 2>&1 &
        echo $! >"$state/service.pid"
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
        [ -S "$sock" ] || { echo "the node's podman service did not start:" >&2; cat "$state/service.log" >&2; exit 1; }
    fi
    as_test podman system connection rm "$conn" >/dev/null 2>&1 || true
    as_test podman system connection add --identity "$tssh/tbx_node_ed25519" "$conn" \
        "ssh://$node_user@127.0.0.1:$port$sock"
    echo "TBX_TEST_NODE=$conn"
    echo "TBX_TEST_NODE_USER=$node_user"
    echo "TBX_TEST_NODE_PORT=$port"
    log "node $conn: ssh://$node_user@127.0.0.1:$port$sock"
}

down() {
    stop_ssh
    if alive "$state/service.pid"; then
        kill "$(cat "$state/service.pid")" 2>/dev/null || true
        for _ in $(seq 50); do alive "$state/service.pid" || break; sleep 0.1; done
    fi
    rm -f "$state/service.pid"
    if getent passwd "$node_user" >/dev/null; then
        as_node podman rm --all --force --time 0 >/dev/null 2>&1 || true
        as_node podman rmi --all --force >/dev/null 2>&1 || true
        # what is left of the node user (podman's pause process, conmon): asked, then made, to end
        pkill -u "$node_user" 2>/dev/null || true
        for _ in $(seq 50); do pgrep -u "$node_user" >/dev/null || break; sleep 0.1; done
        pkill -KILL -u "$node_user" 2>/dev/null || true
        for _ in $(seq 50); do pgrep -u "$node_user" >/dev/null || break; sleep 0.1; done
    fi
    getent passwd "$test_user" >/dev/null && as_test podman system connection rm "$conn" >/dev/null 2>&1 || true
    log "node stopped and emptied"
}

case "${1:-}" in
    install) install_node ;;
    up) up ;;
    down) down ;;
    stop-ssh) stop_ssh ;;
    start-ssh) start_ssh ;;
    *) echo "usage: test-node.sh install|up|down|stop-ssh|start-ssh" >&2; exit 2 ;;
esac
