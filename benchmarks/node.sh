#!/usr/bin/env bash
# tbx run on a podman connection's machine against podman's own remote exec of the same container,
# side by side (hyperfine), as the rootless test user, with the test node of scripts/test-node.sh
# (sshd on 127.0.0.1, the node user's podman API socket). Root; on a provisioned test host.
#
#   bash benchmarks/node.sh          # prints a markdown table
#   bash benchmarks/node.sh --row    # only the rows (benchmarks/run.sh adds them to its table)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-30}
. "$here/lib.sh"   # the test host's facts, OUT, TBX; hf and row
node=$(bash "$here/../scripts/test-node.sh" up | sed -n 's/^TBX_TEST_NODE=//p')
trap 'bash "$here/../scripts/test-node.sh" down >/dev/null 2>&1 || true' EXIT
proj=/home/$TBX_TEST_USER/tbxb-proj
U="runuser -u $TBX_TEST_USER -- env -i -C $proj HOME=/home/$TBX_TEST_USER USER=$TBX_TEST_USER PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR=/run/user/$TBX_TEST_UID"
install -d -o "$TBX_TEST_USER" -g "$TBX_TEST_USER" "$proj"
echo "a small project" >"$proj/README"
chown "$TBX_TEST_USER:" "$proj/README"
# the node's container, made by a first run (and the node's arch, remembered)
conn=(--arch x86_64 --connection "x86_64=$node")
$U "$TBX" run "${conn[@]}" --image "$TBX_TEST_BUSYBOX_REF" --no-tls-verify true
name=$($U "$TBX" list --connection "$node" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["containers"][0]["name"])')
cmds=("$U podman --connection $node exec $name true"
      "$U $TBX run ${conn[*]} --image $TBX_TEST_BUSYBOX_REF --no-tls-verify true"
      "$U $TBX run ${conn[*]} --image $TBX_TEST_BUSYBOX_REF --no-tls-verify --no-sync true")
hf node "$RUNS" "${cmds[@]}"
rows=$(row node "goal <= 1.2x (tbx run on a node; the directory shipped, then --no-sync)" 0 |
       sed "s|runuser -u $TBX_TEST_USER -- env -i [^\`]*XDG_RUNTIME_DIR=[^ ]* ||")
rm -rf "$proj"
if [ "${1:-}" = --row ]; then
    echo "$rows"
else
    echo "| command | min ms | median ms | ratio (median) | goal |"
    echo "|---|---|---|---|---|"
    echo "$rows"
fi
