"""A fake runner for unit tests of the engine modules: no podman, no registry."""

from __future__ import annotations

import subprocess


class FakeRunner:
    """Records every argv; answers from (prefix -> CompletedProcess) rules, first match wins."""

    def __init__(self, rules=None):
        self.calls: list[list[str]] = []
        self.rules = list(rules or [])

    def __call__(self, args, **kw):
        argv = [str(a) for a in args]
        self.calls.append(argv)
        for prefix, answer in self.rules:
            if argv[: len(prefix)] == prefix:
                return answer(argv) if callable(answer) else answer
        return subprocess.CompletedProcess(argv, 0, "", "")

    def ran(self, *prefix):
        return [c for c in self.calls if c[: len(prefix)] == list(prefix)]


def done(rc=0, out="", err=""):
    return subprocess.CompletedProcess([], rc, out, err)
