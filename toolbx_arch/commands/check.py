"""``tbx check``: the readiness report per architecture, as a table or JSON, with a fix per problem;
the rows of arches mapped to a podman connection, and each emulator's QEMU version."""

from __future__ import annotations

from .. import output, readiness
from ..config import load


def check(arches: list[str] | None, *, json_out: bool = False, connections: list[str] = ()) -> int:
    cfg = load()
    from ..emulators import installed

    pulled = installed()
    report = readiness.check(arches or None, search=cfg.emulator_paths + tuple(m["path"] for m in pulled),
                             host_places=cfg.host_emulators, binfmt_setting=cfg.binfmt_mode)
    add_versions(report, pulled)
    add_acceleration(report)
    if connections or cfg.connections:
        from .. import arch as archmod
        from .. import nodes

        unusable: dict = {}  # a connection that does not exist: that arch's problem, not the whole check's
        plan = nodes.mapping([archmod.resolve(r.arch) for r in report.arches], list(connections), False,
                             cfg.connections, unusable)
        states = nodes.probe_all(nodes.all_nodes(plan))
        nodes.remember(states.values())
        add_nodes(report, plan, states, arches, unusable)
    if json_out:
        output.print_json(report.as_dict())
    else:
        output.render_check(report)
    return 0 if report.ready else 1


def add_versions(report: readiness.Report, pulled: list[dict]) -> None:
    """For ``tbx check``, which shows them: each emulator's pulled name and QEMU version (the
    recorded one of a pulled emulator, ``pulled`` being ``emulators.installed()``, else its
    ``--version``, remembered per file). Not done by ``check_arch``: create does not need it."""
    from .. import elf, emulators

    recorded = {m["name"]: m.get("qemu_version") for m in pulled}
    for rep in report.arches:
        emu = rep.emulator
        if emu is None:
            continue
        emu.pulled = emulators.owner_of(emu.real_path)
        if emu.pulled:
            emu.version = recorded.get(emu.pulled)
        elif emu.problem is None:
            emu.version = elf.remembered(emu.real_path, "qemu-version", emulators.qemu_version)


def add_nodes(report: readiness.Report, plan: dict, states: dict, arch_names: list[str] | None,
              unusable: dict | None = None) -> None:
    """Arches mapped to a podman connection run on that machine: ready when it answers and runs
    that arch natively; its local readiness becomes a note. ``unusable``: {arch: (name, TbxError)} of
    arches mapped to a connection that does not exist (or is not ssh)."""
    from ..nodes import wrong_arch

    def on_node(r: readiness.ArchReport, where: dict, problem: readiness.Problem | None) -> None:
        r.where = {"kind": "remote", **where}
        r.notes += [f"here: {p.problem}" for p in r.problems]
        r.problems = [problem] if problem else []
        r.ready = problem is None

    by_name = {r.arch: r for r in report.arches}
    for a, (name, err) in (unusable or {}).items():
        on_node(by_name[a.name], {"connection": name, "uri": None, "reachable": False, "arch": None, "oci_arch": None,
                                  "podman": None, "error": err.message, "fix": err.fix},
                readiness.Problem(err.message, err.fix or ""))
    from ..nodes import down_error, pick

    for a, (use, skipped) in pick(plan, states).items():
        if a.name not in by_name:
            continue
        s = states[use[0].name] if use else skipped[0]
        problem = None
        if not use:
            msg, fix, details = down_error(a, skipped)
            problem = readiness.Problem(msg + (": " + "; ".join(details.splitlines()) if details else ""), fix)
        elif s.arch != a:
            e = wrong_arch(a, s)
            problem = readiness.Problem(e.message, e.fix)
        where = s.as_dict()
        if len(plan[a]) > 1:  # failover: every listed node, in order, and which one is used
            where["candidates"] = [states[n.name].as_dict() for n in plan[a]]
            where["skipped"] = [x.node.name for x in skipped] if use else []
        on_node(by_name[a.name], where, problem)
    if arch_names:
        report.ready = all(r.ready for r in report.arches)


def add_acceleration(report: readiness.Report) -> None:
    """Per emulated arch: whether tbx create --accelerate can run its compiler natively, with what
    (the native tools built so far), and the accelerated containers (an unmatched one said so)."""
    from .. import arch as archmod
    from ..accel import available

    emulated = [r for r in report.arches if r.mode == "emulated"]
    states = available([r.arch for r in emulated], archmod.host()) if emulated else {}
    for r in emulated:
        r.accelerate = acc = states[r.arch]
        if not acc["available"]:
            continue
        tools = ", ".join(acc["tools"]) or "none built yet (tbx create --accelerate builds them once)"
        r.notes.append(f"acceleration: available; native tools: {tools}")
        for c in acc["containers"]:
            r.notes.append(f"acceleration: container {c['name']}: {c['what']}"
                           + ("" if c["matched"] else " -- UNMATCHED compiler: not the emulated compiler's output"))
