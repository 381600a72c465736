"""``tbx check``: the readiness report per architecture, as a table or JSON, with a fix per problem."""

from __future__ import annotations

from .. import output, readiness
from ..config import load


def check(arches: list[str] | None, *, json_out: bool = False) -> int:
    cfg = load()
    from ..emulators import search_dirs

    report = readiness.check(arches or None, search=cfg.emulator_paths + search_dirs(),
                             host_places=cfg.host_emulators, binfmt_setting=cfg.binfmt_mode)
    if json_out:
        output.print_json(report.as_dict())
    else:
        output.render_check(report)
    return 0 if report.ready else 1
