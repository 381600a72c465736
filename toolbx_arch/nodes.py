"""Native machines through podman's own connections (``podman system connection``).

tbx keeps no list of machines: names, URIs and identities are podman's. An architecture is mapped
to a connection in the configuration (``[connections]``, e.g. ``aarch64 = "arm-node"``) or with
``--connection ARCH=NAME``; ``--local`` keeps everything here. A connection is used only for the
arch its machine runs natively (asked with ``podman --connection NAME info``); a mapping to a
machine of another arch is refused, naming the machine's arch.

Host keys: podman's own ssh client verifies a node only against ~/.ssh/known_hosts, trusts an
unknown host on first use (appending its key), and checks nothing when that file does not exist.
So before podman connects, tbx asks the node for the keys it presents (``ssh-keyscan``) and goes on
only when one of them is listed for it in that same file (``verify``); an unknown or changed key
is refused with the ssh command that shows it. /etc/ssh/ssh_known_hosts does not count: podman
does not read it.

A failure to reach a node is that arch's failure, with the reason (DNS, refused, auth, host key,
podman socket) and a fix; tbx falls back to local (emulated) work only with --fallback-local.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from urllib.parse import urlsplit

from . import arch as archmod
from . import runner
from .errors import TbxError

PROBE_TIMEOUT = 60
LABEL_REMOTE = "io.github.tbx.remote"   # on a node's container: made by tbx run, from this source


class Node:
    """One podman connection: its name, URI (ssh://user@host:port/socket) and identity file."""

    __slots__ = ("name", "uri", "identity", "user", "host", "port", "scheme")

    def __init__(self, name: str, uri: str, identity: str = "") -> None:
        self.name, self.uri, self.identity = name, uri, identity or ""
        u = urlsplit(uri)
        self.scheme = u.scheme
        self.user = u.username or os.environ.get("USER", "")
        self.host = u.hostname or ""
        self.port = u.port or 22

    @property
    def podman(self) -> list[str]:
        return ["podman", "--connection", self.name]

    @property
    def ssh_target(self) -> str:
        """How to reach it with OpenSSH, for the fixes we print."""
        port = f"-p {self.port} " if self.port != 22 else ""
        ident = f"-i {shlex.quote(self.identity)} " if self.identity else ""
        return f"ssh {port}{ident}{self.user}@{self.host}"


class State:
    """What a node answered: its arch and podman version, or why it did not answer."""

    __slots__ = ("node", "arch", "podman_version", "error", "fix")

    def __init__(self, node: Node, arch: archmod.Arch | None = None, podman_version: str | None = None,
                 error: str | None = None, fix: str | None = None) -> None:
        self.node, self.arch, self.podman_version, self.error, self.fix = node, arch, podman_version, error, fix

    @property
    def reachable(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        return {"connection": self.node.name, "uri": self.node.uri, "reachable": self.reachable,
                "arch": self.arch.name if self.arch else None, "oci_arch": self.arch.oci_arch if self.arch else None,
                "podman": self.podman_version, "error": self.error, "fix": self.fix}


def connections() -> dict[str, Node]:
    """podman's connections for this user, by name."""
    r = runner.run(["podman", "system", "connection", "ls", "--format", "json"], timeout=60)
    if r.returncode != 0:
        raise TbxError("listing podman's connections failed", details=r.stderr.strip()[-400:],
                       fix="Check: podman system connection ls")
    known = {c["Name"]: Node(c["Name"], c.get("URI", ""), c.get("Identity", ""))
             for c in json.loads(r.stdout or "[]")}
    forget_missing(known)
    return known


def _from_files(name: str) -> Node | None:
    """The connection ``name`` read from podman's own files, as podman 4 (containers.conf,
    [engine.service_destinations]) and 5 (podman-connections.json) keep them; None: not found
    there (then podman is asked). Saves a podman process (~30 ms) on every remote run."""
    from . import paths

    user = paths.containers_config()
    system = "/etc/containers" if os.geteuid() == 0 else None
    for d in (user, system):
        if d is None:
            continue
        paths.require_trusted(os.path.join(d, "podman-connections.json"), "podman's connection file")
        try:
            with open(os.path.join(d, "podman-connections.json"), "rb") as f:
                c = (json.load(f).get("Connection") or {}).get("Connections", {}).get(name)
            if c and c.get("URI"):
                return Node(name, c["URI"], c.get("Identity", ""))
        except (OSError, ValueError, AttributeError):
            pass
    files = [os.environ["CONTAINERS_CONF"]] if os.environ.get("CONTAINERS_CONF") else []
    files += [os.path.join(user, "containers.conf")] + ([os.path.join(system, "containers.conf")] if system else [])
    for path in files:
        paths.require_trusted(path, "podman's configuration file")
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError:
            continue
        if b"service_destinations" not in text:
            continue
        import tomllib

        try:
            dest = tomllib.loads(text.decode()).get("engine", {}).get("service_destinations", {}).get(name)
        except (ValueError, UnicodeDecodeError, AttributeError):
            return None  # podman will say what is wrong with it
        if isinstance(dest, dict) and dest.get("uri"):
            return Node(name, dest["uri"], dest.get("identity", ""))
    return None


# --- mapping arches to connections -------------------------------------------------------------

def parse_pairs(pairs: list[str]) -> dict[archmod.Arch, list[str]]:
    """``--connection ARCH=NAME[,NAME…]`` values (repeatable); every arch alias works. Several
    names: the first that answers is used."""
    out: dict[archmod.Arch, list[str]] = {}
    for p in pairs:
        a, sep, names = p.partition("=")
        got = [n.strip() for n in names.split(",")]
        if not sep or not a.strip() or not all(got):
            raise TbxError(f"--connection {p!r} is not ARCH=NAME",
                           fix="Write it as --connection aarch64=arm-node (podman system connection ls lists names)")
        arch = archmod.resolve(a.strip())
        if arch in out and out[arch] != got:
            raise TbxError(f"--connection maps {arch.name} twice ({','.join(out[arch])} and {','.join(got)})",
                           fix="Give the connections of an arch once: --connection ARCH=FIRST,SECOND")
        out[arch] = got
    return out


def no_such_connection(name: str, known: dict[str, Node], what: str = "") -> TbxError:
    have = ", ".join(sorted(known)) or "none"
    return TbxError(f"there is no podman connection named {name!r}{what}",
                    details=f"podman's connections for this user: {have}",
                    fix=f"Add it: podman system connection add {name} --identity ~/.ssh/KEY "
                        "ssh://USER@HOST[:PORT]/run/user/UID/podman/podman.sock")


def mapping(wanted: list[archmod.Arch], pairs: list[str], local: bool, configured: dict[str, list[str]],
            unusable: dict | None = None) -> dict[archmod.Arch, list[Node]]:
    """The connections for each wanted arch that has them, in order (the first that answers is
    used): --connection over the configuration's [connections]; --local: none. An unknown (or
    non-ssh) connection is refused here, listing podman's; with ``unusable`` (tbx check) it is
    recorded there instead, as {arch: (name, TbxError)}."""
    given = parse_pairs(pairs)
    if local and given:
        raise TbxError("--local and --connection contradict each other", fix="Give one of them")
    if local:
        return {}
    chosen: dict[archmod.Arch, list[str]] = {}
    for key, names in configured.items():
        a = archmod.resolve(key)
        if a in wanted:
            chosen[a] = [names] if isinstance(names, str) else list(names)
    chosen.update({a: n for a, n in given.items() if a in wanted})
    extra = [a.name for a in given if a not in wanted]
    if extra:
        raise TbxError(f"--connection maps {', '.join(extra)}, which --arch does not ask for",
                       fix="Add the arch to --arch, or drop its --connection")
    if not chosen:
        return {}
    names = {n for ns in chosen.values() for n in ns}
    known = {n: node for n in names if (node := _from_files(n)) is not None}
    if len(known) < len(names):
        known = connections()
    out = {}
    for a, ns in chosen.items():
        err = None
        for name in ns:
            if name not in known:
                err = no_such_connection(name, known, f" (for {a.name})")
            elif known[name].scheme != "ssh":
                err = TbxError(f"connection {name} is {known[name].scheme}://, not ssh://; tbx uses ssh connections "
                               f"only", fix=f"Add one over ssh: podman system connection add {name}-ssh ssh://USER@HOST/…")
            if err is not None:
                break
        if err is None:
            out[a] = [known[n] for n in ns]
        elif unusable is None:
            raise err
        else:
            unusable[a] = (ns[0] if len(ns) == 1 else ",".join(ns), err)
    return out


def pick(plan: dict[archmod.Arch, list[Node]], states: dict[str, "State"]):
    """Per arch: (the nodes to use, in order, starting with the first that answered, and the
    states of those skipped before it); no node answering: ([], every state)."""
    out = {}
    for a, ns in plan.items():
        skipped = []
        for i, n in enumerate(ns):
            if states[n.name].reachable:
                out[a] = ([m for m in ns[i:] if states[m.name].reachable], skipped)
                break
            skipped.append(states[n.name])
        else:
            out[a] = ([], skipped)
    return out


def down_error(a: archmod.Arch, skipped: list["State"]) -> tuple[str, str, str | None]:
    """(message, fix, details) when no node of ``a`` answers: one line per node."""
    if len(skipped) == 1:
        return skipped[0].error, skipped[0].fix, None
    return (f"none of the {len(skipped)} nodes for {a.name} answers",
            skipped[0].fix, "\n".join(f"{s.node.name}: {s.error} (fix: {s.fix})" for s in skipped))


def all_nodes(plan: dict[archmod.Arch, list[Node]]) -> list[Node]:
    return list({n.name: n for ns in plan.values() for n in ns}.values())


# --- host keys -------------------------------------------------------------------------------

def podman_known_hosts() -> Path:
    """The one known_hosts file podman's ssh client verifies against."""
    from . import paths

    return Path(paths.home()) / ".ssh" / "known_hosts"


def known_lines(node: Node, files: list[Path] | None = None) -> list[str]:
    """The lines of podman's known_hosts (or ``files``) that give a key for the node."""
    from .knownhosts import lines_for

    return lines_for(node.host, node.port, files or [podman_known_hosts()])


def known_host(node: Node, files: list[Path] | None = None) -> bool:
    """Is a host key of the node in known_hosts?"""
    return bool(known_lines(node, files))


def unknown_host_error(node: Node) -> tuple[str, str]:
    return (f"the host key of {node.name} ({node.host}:{node.port}) is not in {podman_known_hosts()} (the file "
            "podman checks), and tbx does not trust a host on first use",
            f"Verify the key it shows and accept it once: {node.ssh_target} -o UserKnownHostsFile={podman_known_hosts()} true")


def presented_keys(node: Node) -> set[tuple[str, str]] | None:
    """The host keys the node presents now (``ssh-keyscan``); None when it did not answer (then
    podman's own attempt says why)."""
    try:
        r = runner.run(["ssh-keyscan", "-T", "5", "-p", str(node.port), node.host], timeout=15)
    except TbxError:
        return None
    from .knownhosts import keys as _keys

    keys = _keys([ln for ln in r.stdout.splitlines() if ln and not ln.startswith("#")])
    return keys or None


def changed_key_error(node: Node) -> tuple[str, str]:
    return (f"{node.name}: the host key that {node.host}:{node.port} presents is not the one listed for it in "
            f"{podman_known_hosts()} (reinstalled, or someone in between); nothing was sent to it",
            f"If the node was reinstalled, verify its new key, then: ssh-keygen -R '[{node.host}]:{node.port}' "
            f"and {node.ssh_target} true")


def verify(node: Node, lines: list[str] | None = None) -> tuple[str, str] | None:
    """(reason, fix) when podman must not connect to ``node``: no key listed for it in podman's
    known_hosts, or the node presents none of the listed keys. None: verified (or not answering,
    which podman then reports)."""
    from .knownhosts import keys

    lines = known_lines(node) if lines is None else lines
    listed = keys(lines)
    if not listed:
        return unknown_host_error(node)
    if runner.which("ssh-keyscan") is None:  # no way to see the key podman would meet: refuse
        return (f"{node.name}: tbx cannot check the host key {node.host}:{node.port} presents: ssh-keyscan "
                "is not installed", "Install OpenSSH's client (Debian/Ubuntu: apt-get install openssh-client; "
                "Fedora: dnf install openssh-clients)")
    shown = presented_keys(node)
    if shown is not None and not shown & listed:
        return changed_key_error(node)
    return None


# --- asking a node ---------------------------------------------------------------------------

def classify(stderr: str, node: Node) -> tuple[str, str]:
    """(reason, fix) for a podman-remote failure to reach ``node``."""
    low = stderr.lower()
    where = f"{node.host}:{node.port}"
    if "no such host" in low or "lookup " in low and "server misbehaving" in low or "name resolution" in low:
        return (f"{node.name}: the host name {node.host} does not resolve (DNS)",
                "Check the host name in: podman system connection ls")
    if "connection refused" in low:
        return (f"{node.name}: {where} refused the connection (is sshd running there?)",
                f"Start sshd on the node, or fix the port: podman system connection ls; try: {node.ssh_target} true")
    if "key mismatch" in low or "host key" in low and "changed" in low:
        return (f"{node.name}: the host key of {where} does not match your known_hosts (reinstalled, or "
                "someone in between)",
                f"If the node was reinstalled, verify its new key, then: ssh-keygen -R '[{node.host}]:{node.port}' "
                f"and {node.ssh_target} true")
    if "unable to authenticate" in low or "permission denied" in low or "no supported methods" in low:
        ident = node.identity or "~/.ssh/id_ed25519"
        return (f"{node.name}: {node.user}@{where} did not accept your key (authentication)",
                f"Authorize it on the node: ssh-copy-id -i {ident}.pub -p {node.port} {node.user}@{node.host}")
    if "timeout" in low or "timed out" in low or "no route" in low or "unreachable" in low:
        return (f"{node.name}: {where} did not answer (timeout or no route)",
                f"Check the node is up and reachable: {node.ssh_target} true")
    if "_ping" in low or "open failed" in low or "podman.sock" in low or "no such file" in low:
        return (f"{node.name}: ssh works but podman's API socket on the node does not answer",
                "On the node: systemctl --user enable --now podman.socket (or podman system service --time=0 &), "
                "and check the socket path in: podman system connection ls")
    tail = " ".join(stderr.strip().splitlines()[-2:])[-300:]
    return (f"{node.name}: the node did not answer ({tail or 'no message'})",
            f"Try: {' '.join(node.podman)} info")


def connection_failed(rc: int, stderr: str) -> bool:
    """Did a podman-remote command fail to reach its node at all (not the command failing)?"""
    return rc == 125 and any(s in stderr for s in ("Cannot connect to Podman", "failed to connect",
                                                   "unable to connect to Podman", "ssh: handshake failed"))


class Unreachable(TbxError):
    """A node that did not answer (nothing ran there): another listed node may be tried."""


def raise_if_unreachable(r, node: Node) -> None:
    """A podman-remote command ``r`` (CompletedProcess) that did not reach its node: its reason and fix."""
    if connection_failed(r.returncode, r.stderr):
        reason, fix = classify(r.stderr, node)
        raise Unreachable(reason, fix=fix)


def verified(name: str) -> Node:
    """The connection ``name`` (one of podman's), its host key checked; a TbxError otherwise."""
    known = connections()
    if name not in known:
        raise no_such_connection(name, known)
    node = known[name]
    bad = verify(node)
    if bad:
        raise TbxError(bad[0], fix=bad[1])
    return node


def probe(node: Node) -> State:
    """Ask the node for its arch and podman version; unreachable: the reason and a fix."""
    bad = verify(node)
    if bad:
        return State(node, None, None, *bad)
    try:
        r = runner.run([*node.podman, "info", "--format", "{{.Host.Arch}}|{{.Version.Version}}"],
                       timeout=PROBE_TIMEOUT)
    except TbxError as e:  # the timeout
        return State(node, None, None, f"{node.name}: {e.message}", f"Check the node: {node.ssh_target} true")
    if r.returncode != 0:
        return State(node, None, None, *classify(r.stderr, node))
    oci, _, version = r.stdout.strip().partition("|")
    a = archmod.lookup(oci)
    if a is None:
        return State(node, None, version, f"{node.name} runs {oci or 'an unknown arch'}, which tbx does not know",
                     "Map a supported arch to it")
    return State(node, a, version or None)


def probe_all(nodes: list[Node]) -> dict[str, State]:
    unique = {n.name: n for n in nodes}
    if not unique:
        return {}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(unique)) as pool:
        states = list(pool.map(probe, unique.values()))
    return {s.node.name: s for s in states}


def wrong_arch(a: archmod.Arch, s: State) -> TbxError:
    return TbxError(f"connection {s.node.name} runs {s.arch.name} ({s.arch.oci_arch}), not {a.name}: a connection "
                    f"is used only for the arch its machine runs natively",
                    fix=f"Map it to its own arch ([connections] {s.arch.name} = \"{s.node.name}\", or --connection "
                        f"{s.arch.name}={s.node.name}), or name a node that runs {a.name}")


def check_arches(plan: dict[archmod.Arch, list[Node]], states: dict[str, State]) -> None:
    """Refuse a mapping to a node of another arch (a node that answered)."""
    for a, ns in plan.items():
        for node in ns:
            s = states.get(node.name)
            if s is not None and s.reachable and s.arch is not None and s.arch != a:
                raise wrong_arch(a, s)


# --- the node's arch, remembered --------------------------------------------------------------

def _cache_path() -> str | None:
    from .status import cache_path

    return cache_path("nodes.json")


def _host_key(lines: list[str]) -> str:
    """A digest of the node's known_hosts lines: the cached arch is tied to the machine's key."""
    import hashlib

    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def remembered_arches(plan: dict[archmod.Arch, list[Node]]) -> dict[str, State]:
    """States for nodes whose arch was seen before under the same URI and host key: a run needs
    no round trip just to learn it again (the machine cannot change without its key changing,
    which ssh would refuse). Nodes not remembered are asked, and remembered."""
    from .status import load_cache

    cache = load_cache(_cache_path())
    states: dict[str, State] = {}
    ask = []
    for node in all_nodes(plan):
        c = cache.get(node.name) or {}
        lines = known_lines(node)
        bad = verify(node, lines)  # every run: the key podman will meet must be the listed one
        if bad:
            states[node.name] = State(node, None, None, *bad)
        elif c.get("uri") == node.uri and c.get("key") == _host_key(lines) and archmod.lookup(c.get("arch", "")):
            states[node.name] = State(node, archmod.lookup(c["arch"]), c.get("podman"))
        else:
            ask.append(node)
    fresh = probe_all(ask)
    states.update(fresh)
    remember(fresh.values())
    return states


def forget_missing(known: dict[str, Node]) -> None:
    """Follow podman's connections: a node no longer among them (``podman system connection rm``)
    is dropped from the cache, and so is one whose URI changed."""
    from .status import load_cache, store_cache

    path = _cache_path()
    cache = load_cache(path)
    kept = {n: c for n, c in cache.items() if n in known and c.get("uri") == known[n].uri}
    if kept != cache:
        store_cache(path, kept)


def remember(states) -> None:
    """Remember the arch (and podman version) of each node that answered."""
    from .status import load_cache, store_cache

    new = {s.node.name: {"uri": s.node.uri, "key": _host_key(known_lines(s.node)), "arch": s.arch.name,
                         "podman": s.podman_version} for s in states if s.reachable and s.arch}
    if new:
        path = _cache_path()
        store_cache(path, {**load_cache(path), **new})
