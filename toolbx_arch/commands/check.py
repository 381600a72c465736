"""``tbx check``: the readiness report per architecture, as a table or JSON, with a fix per problem."""

from __future__ import annotations

from .. import output, readiness
from ..config import load


def check(arches: list[str] | None, *, json_out: bool = False, connections: list[str] = ()) -> int:
    cfg = load()
    from ..emulators import installed

    pulled = installed()
    report = readiness.check(arches or None, search=cfg.emulator_paths + tuple(m["path"] for m in pulled),
                             host_places=cfg.host_emulators, binfmt_setting=cfg.binfmt_mode)
    readiness.add_versions(report, pulled)
    if connections or cfg.connections:
        from .. import arch as archmod
        from .. import nodes

        unusable: dict = {}  # a connection that does not exist: that arch's problem, not the whole check's
        plan = nodes.mapping([archmod.resolve(r.arch) for r in report.arches], list(connections), False,
                             cfg.connections, unusable)
        states = nodes.probe_all(list(plan.values()))
        nodes.remember(states.values())
        readiness.add_nodes(report, plan, states, arches, unusable)
    if json_out:
        output.print_json(report.as_dict())
    else:
        output.render_check(report)
    return 0 if report.ready else 1
