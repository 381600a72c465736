"""The command line's grammar, once: every option of every command as the CLI (typer, ``cli``)
defines it (``OPTIONS``; tests/unit/test_entry.py fails when the two differ), and what reads it
outside the framework: ``split_root`` (root options before the command), ``scan`` (a command's
options and words, as click reads them), ``normalize_json_args`` (podman's ``--format json``)
and ``refuse_bundled_values`` (``-rel`` is not ``-r el``). ``FAST`` says which options each fast
path of ``entry`` reads itself; every other option of that command is in ``LEFT_TO_CLI`` and makes
the fast path decline (the CLI then reads the line). Standard library only: the fast paths load it.
"""

from __future__ import annotations

ROOT_OPTIONS = {"--log-level": True, "--version": False}   # option -> takes a value
LOG_LEVELS = ("debug", "info", "warning", "error")
GROUPS = ("image", "emulator")
COMMAND_FOLLOWS = frozenset(("run",))   # commands whose first word starts the command they run
JSON_COMMANDS = frozenset(("check", "list", "image", "build", "run", "emulator"))

# command -> {option: (parameter, takes a value, the flag's value)}
OPTIONS: dict[str, dict[str, tuple[str, bool, bool | None]]] = {
    "build": {
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--tag": ("tag", True, None),
        "-t": ("tag", True, None),
        "--file": ("file", True, None),
        "-f": ("file", True, None),
        "--build-arg": ("build_arg", True, None),
        "--push": ("push", False, True),
        "--keep-going": ("keep_going", False, True),
        "--jobs": ("jobs", True, None),
        "-j": ("jobs", True, None),
        "--authfile": ("authfile", True, None),
        "--tls-verify": ("tls_verify", False, True),
        "--no-tls-verify": ("tls_verify", False, False),
        "--connection": ("connection", True, None),
        "--local": ("local", False, True),
        "--fallback-local": ("fallback_local", False, True),
        "--json": ("json_out", False, True)},
    "check": {
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--connection": ("connection", True, None),
        "--json": ("json_out", False, True)},
    "completion": {},
    "create": {
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--image": ("image", True, None),
        "-i": ("image", True, None),
        "--distro": ("distro", True, None),
        "-d": ("distro", True, None),
        "--release": ("release", True, None),
        "-r": ("release", True, None),
        "--authfile": ("authfile", True, None),
        "--tls-verify": ("tls_verify", False, True),
        "--no-tls-verify": ("tls_verify", False, False),
        "--userns": ("userns", True, None),
        "--cpu": ("cpu", True, None),
        "--emulator": ("emulator", True, None),
        "--volume": ("volume", True, None),
        "-v": ("volume", True, None),
        "--assumeyes": ("yes", False, True),
        "-y": ("yes", False, True),
        "--accelerate": ("accelerate", False, True),
        "--no-accelerate": ("accelerate", False, False),
        "--accelerate-unmatched": ("accelerate_unmatched", False, True)},
    "emulator list": {
        "--json": ("json_out", False, True)},
    "emulator pull": {
        "--authfile": ("authfile", True, None),
        "--tls-verify": ("tls_verify", False, True),
        "--no-tls-verify": ("tls_verify", False, False)},
    "emulator rm": {},
    "enter": {
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--distro": ("distro", True, None),
        "-d": ("distro", True, None),
        "--release": ("release", True, None),
        "-r": ("release", True, None),
        "--image": ("image", True, None),
        "-i": ("image", True, None),
        "--connection": ("connection", True, None),
        "--local": ("local", False, True),
        "--sync": ("sync", False, True),
        "--no-sync": ("sync", False, False),
        "--sync-deletions": ("sync_deletions", False, True)},
    "image inspect": {
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--authfile": ("authfile", True, None),
        "--tls-verify": ("tls_verify", False, True),
        "--no-tls-verify": ("tls_verify", False, False),
        "--json": ("json_out", False, True)},
    "image pull": {
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--authfile": ("authfile", True, None),
        "--tls-verify": ("tls_verify", False, True),
        "--no-tls-verify": ("tls_verify", False, False)},
    "list": {
        "--containers": ("containers", False, True),
        "-c": ("containers", False, True),
        "--images": ("images", False, True),
        "-i": ("images", False, True),
        "--all": ("all_", False, True),
        "-a": ("all_", False, True),
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--connection": ("connection", True, None),
        "--json": ("json_out", False, True)},
    "rm": {
        "--force": ("force", False, True),
        "-f": ("force", False, True),
        "--all": ("all_", False, True),
        "-a": ("all_", False, True),
        "--connection": ("connection", True, None)},
    "rmi": {
        "--force": ("force", False, True),
        "-f": ("force", False, True),
        "--all": ("all_", False, True),
        "-a": ("all_", False, True)},
    "run": {
        "--container": ("container", True, None),
        "-c": ("container", True, None),
        "--arch": ("arch", True, None),
        "--platform": ("arch", True, None),
        "--image": ("image", True, None),
        "-i": ("image", True, None),
        "--distro": ("distro", True, None),
        "-d": ("distro", True, None),
        "--release": ("release", True, None),
        "-r": ("release", True, None),
        "--create": ("create_missing", False, True),
        "--jobs": ("jobs", True, None),
        "-j": ("jobs", True, None),
        "--json": ("json_out", False, True),
        "--tls-verify": ("tls_verify", False, True),
        "--no-tls-verify": ("tls_verify", False, False),
        "--connection": ("connection", True, None),
        "--local": ("local", False, True),
        "--fallback-local": ("fallback_local", False, True),
        "--sync": ("sync", False, True),
        "--no-sync": ("sync", False, False),
        "--sync-deletions": ("sync_deletions", False, True)},
}

# What each fast path reads itself, and what it leaves to the CLI (both together: every option).
FAST = {
    "run": frozenset(("--arch", "--platform", "--image", "-i", "--jobs", "-j", "--connection", "--tls-verify",
                      "--no-tls-verify", "--sync", "--no-sync", "--local", "--fallback-local", "--create",
                      "--json", "-c", "--container", "--sync-deletions")),
    "create": frozenset(("--arch", "--platform", "--image", "-i", "--userns", "--cpu", "-y", "--assumeyes")),
    "list": frozenset(("--json", "-c", "--containers", "-i", "--images", "-a", "--all", "--arch", "--platform")),
    "rm": frozenset(("-f", "--force")),
    "enter": frozenset(("--arch", "--platform")),
}
LEFT_TO_CLI = {
    "run": frozenset(("--distro", "-d", "--release", "-r")),
    "create": frozenset(("--distro", "-d", "--release", "-r", "--authfile", "--tls-verify", "--no-tls-verify",
                         "--emulator", "--volume", "-v", "--accelerate", "--no-accelerate", "--accelerate-unmatched")),
    "list": frozenset(("--connection",)),
    "rm": frozenset(("--all", "-a", "--connection")),
    "enter": frozenset(("--distro", "-d", "--release", "-r", "--image", "-i", "--connection", "--local", "--sync",
                        "--no-sync", "--sync-deletions")),
}


def split_root(args: list[str]) -> tuple[list[str], list[str]]:
    """(the root options before the command, the rest): ``--log-level debug list -c`` ->
    (["--log-level", "debug"], ["list", "-c"]). Stops at anything else (``--version``, ``--help``)."""
    i = 0
    while i < len(args) and args[i].startswith("--"):
        key, eq, _ = args[i].partition("=")
        if ROOT_OPTIONS.get(key) is not True:
            break
        if not eq and i + 1 >= len(args):
            break
        i += 1 if eq else 2
    return args[:i], args[i:]


def log_level(root: list[str]) -> str | None:
    """The level the root options ask for (the last one, as the CLI takes it), or None when they
    ask for none or for one that does not exist (the CLI then says so)."""
    level, i = "warning", 0
    while i < len(root):
        key, eq, val = root[i].partition("=")
        if not eq:
            val, i = root[i + 1], i + 1
        level = val.lower()
        i += 1
    return level if level in LOG_LEVELS else None


def scan(command: str, argv: list[str], handled, *, command_follows: bool = False):
    """``argv`` of ``tbx COMMAND`` read as the CLI reads it: ({parameter: [values in order]}, [words]),
    a flag's value being the table's. None when it holds an option outside ``handled`` (or one the
    command does not have), a glued short value or bundled flags, or an option without its value.
    ``command_follows``: the first word and all after it are a command's (``tbx run``)."""
    table = OPTIONS[command]
    values: dict[str, list] = {}
    words: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            words += argv[i + 1:]
            break
        if a.startswith("-") and a != "-":
            key, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
            if key not in handled or key not in table:
                return None
            param, takes_value, flag = table[key]
            if takes_value:
                if not eq:
                    if i + 1 >= len(argv):
                        return None
                    i += 1
                    val = argv[i]
                values.setdefault(param, []).append(val)
            elif eq:
                return None
            else:
                values.setdefault(param, []).append(flag)
        else:
            words.append(a)
            if command_follows:
                words += argv[i + 1:]
                break
        i += 1
    return values, words


def one(values: dict, param: str):
    """The single value given for ``param`` (None when not given); ``...`` when given twice or
    empty or looking like an option: a fast path declines those."""
    got = values.get(param)
    if not got:
        return None
    if len(got) > 1 or (isinstance(got[0], str) and (not got[0] or got[0].startswith("-"))):
        return ...
    return got[0]


def flag(values: dict, param: str, default: bool = False) -> bool:
    got = values.get(param)
    return got[-1] if got else default


def _command_of(rest: list[str]) -> tuple[str, int]:
    """(the command's table name, how many words name it) of the arguments after the root options."""
    if rest and rest[0] in GROUPS and len(rest) > 1 and f"{rest[0]} {rest[1]}" in OPTIONS:
        return f"{rest[0]} {rest[1]}", 2
    return (rest[0], 1) if rest else ("", 0)


def normalize_json_args(args: list[str]) -> tuple[list[str], bool]:
    """Turn podman's ``--format json`` / ``--format=json`` into ``--json`` among tbx's own options
    (after root options; never inside the command ``tbx run`` runs), and tell whether JSON output
    was asked for."""
    root, rest = split_root(args)
    if not rest or rest[0] not in JSON_COMMANDS:
        return args, False
    command, n = _command_of(rest)
    table = OPTIONS.get(command, {})
    out, wanted, i = [*root, *rest[:n]], False, n
    while i < len(rest):
        a = rest[i]
        if a == "--":
            out += rest[i:]
            break
        if a in ("--format=json", "--json") or (a == "--format" and i + 1 < len(rest) and rest[i + 1] == "json"):
            out.append("--json")
            wanted = True
            i += 2 if a == "--format" else 1
            continue
        out.append(a)
        if a in table and table[a][1] and i + 1 < len(rest):
            out.append(rest[i + 1])
            i += 2
            continue
        if command in COMMAND_FOLLOWS and not a.startswith("-"):  # the command: the rest is its own
            out += rest[i + 1:]
            break
        i += 1
    return out, wanted


def refuse_bundled_values(args: list[str]):
    """``-rel`` would be ``-r el``: the message and fix refusing a short option glued to its value
    (far more often a name that starts with '-', which names cannot, than a deliberate spelling),
    or None. A number is taken as meant (``-j2``)."""
    _, rest = split_root(args)
    command, n = _command_of(rest)
    table = OPTIONS.get(command)
    if table is None:
        return None
    shorts = {o for o, (_, takes_value, _f) in table.items() if takes_value and len(o) == 2}
    longs = {o for o, (_, takes_value, _f) in table.items() if takes_value and o.startswith("--")}
    rest = rest[n:]
    j = 0
    while j < len(rest):
        tok = rest[j]
        if tok == "--":
            break
        if tok.startswith("--"):
            j += 2 if tok in longs else 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            if tok[:2] in shorts and len(tok) > 2 and not tok[2:].isdigit():
                return (f"'{tok}' would be read as option {tok[:2]} with the value '{tok[2:]}'",
                        f"Write '{tok[:2]} {tok[2:]}' for that; names cannot start with '-'")
            j += 2 if tok in shorts else 1
            continue
        if command in COMMAND_FOLLOWS:  # the command's own arguments follow
            break
        j += 1
    return None
